# Licensed under a 3-clause BSD style license - see LICENSE
"""
Safe output files: the one atomic writer every part of the package uses.

`atomic_write` writes through a temporary file in the destination's own
folder, flushes it to disk (``fsync``), gives it the mode of the file it
replaces (or the umask's default for a new file) and moves it over the
destination with `os.replace`: a reader, a crash or a full disk sees the old
file or the complete new one, never half of one. `check_output` refuses, before
any work, an output that would destroy something: an input of the same run
(compared by device and inode, so another spelling or a hard link is caught),
a directory, a FIFO, a device or a socket. A symbolic link is written through
to its target (the link itself stays).
"""

import errno
import hashlib
import json
import os
import re
import stat
import tempfile
import warnings

from astropy.io.fits.verify import VerifyWarning

from .ecsv import ECSV_FORMAT

__all__ = ['atomic_write', 'write_table_atomic']

#: astropy table formats by file extension (anything else: ECSV).
_TABLE_FORMATS = {'.ecsv': 'ascii.ecsv', '.csv': 'ascii.csv',
                  '.fits': 'fits', '.fit': 'fits', '.fts': 'fits'}


def table_format(path):
    """
    The astropy table format for ``path`` from its extension.

    ``.fits``/``.fit``/``.fts`` give a FITS binary table, ``.csv`` CSV and
    anything else ECSV.

    Examples
    --------
    >>> from ccdphot_ext.utils.files import table_format
    >>> table_format('res.fits'), table_format('lc.ecsv'), table_format('x')
    ('fits', 'ascii.ecsv', 'ascii.ecsv')
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    return _TABLE_FORMATS.get(ext, 'ascii.ecsv')


def is_stream(path):
    """
    Whether ``path`` is a pipe, a socket or a character device (such as
    ``/dev/stdin`` fed by a pipe): a file with no size that can be read
    only once, from the start.

    Examples
    --------
    >>> from ccdphot_ext.utils.files import is_stream
    >>> is_stream(__file__)
    False
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError, TypeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


#: what a temporary file adds after its prefix: ``.XXXXXXXX.tmp``
_TEMP_TAIL = 13


def _name_max(folder):
    """The longest file name (bytes) the file system of ``folder`` takes."""
    try:
        return os.pathconf(folder, 'PC_NAME_MAX')
    except (OSError, ValueError, AttributeError):
        return 255


def hidden_sibling(target, reserve=0):
    """
    The hidden name ``.NAME`` beside ``target`` to which ``reserve`` more
    bytes will be appended (``.lock``, ``.XXXXXXXX.tmp``), shortened when
    needed so that the whole name fits the file system (``NAME``'s start,
    ``~`` and 8 hexadecimal digits of a hash of ``NAME``).

    Parameters
    ----------
    target : str
        The file the sibling belongs to (absolute, links resolved).
    reserve : int, optional
        Bytes the caller appends to the returned name.

    Returns
    -------
    path : str

    Examples
    --------
    >>> import os
    >>> from ccdphot_ext.utils.files import hidden_sibling
    >>> os.path.basename(hidden_sibling('/tmp/lc.ecsv', 5))
    '.lc.ecsv'
    >>> len(os.path.basename(hidden_sibling('/tmp/' + 'x' * 250, 5))) + 5
    255
    """
    folder, name = os.path.split(target)
    limit = _name_max(folder or '.')
    encoded = os.fsencode(name)
    if 1 + len(encoded) + reserve <= limit:
        return os.path.join(folder, f'.{name}')
    digest = hashlib.sha1(encoded).hexdigest()[:8]
    keep = encoded[:max(limit - reserve - 10, 1)]
    return os.path.join(folder, '.' + keep.decode(errors='ignore') +
                        f'~{digest}')


def temporary_pattern(target):
    """
    The names of the temporary files `atomic_write` makes for ``target``
    (a compiled pattern to match file names in its folder).

    Examples
    --------
    >>> from ccdphot_ext.utils.files import temporary_pattern
    >>> bool(temporary_pattern('/tmp/lc.ecsv').fullmatch('.lc.ecsv.ab_d1234.tmp'))
    True
    """
    prefix = os.path.basename(hidden_sibling(target, _TEMP_TAIL))
    return re.compile(rf'{re.escape(prefix)}\.[A-Za-z0-9_]{{8}}\.tmp')


def _default_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _resolve(path):
    """The file a write to ``path`` lands in (symbolic links followed)."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f'{path}: symbolic link loop') from None
    return os.path.realpath(path)


def _same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_output(path, *, inputs=(), label='output'):
    """
    Refuse an output path that writing would destroy; return its target.

    Parameters
    ----------
    path : str or path-like
        The output file.
    inputs : iterable of (str or path-like, str), optional
        ``(path, label)`` of each input of the same run; an output that is
        the same file (same device and inode: another spelling, a symbolic
        or hard link) is refused.
    label : str, optional
        How to name the output in messages (an option such as ``'-o'``).

    Returns
    -------
    target : str
        The absolute path that will be written (a symbolic link followed to
        its target).

    Raises
    ------
    ValueError
        Naming ``label`` and the path: the output is an input, a directory
        (or a name ending in ``/``), a FIFO, a device or a socket, a
        symbolic-link loop, a name longer than the file system takes, or
        its folder does not exist; or an existing file is a FITS image (a
        frame, which no table output may replace).

    Examples
    --------
    >>> import os, tempfile
    >>> from ccdphot_ext.utils.files import check_output
    >>> folder = tempfile.mkdtemp()
    >>> frame = os.path.join(folder, 'v.fits')
    >>> open(frame, 'w').close()
    >>> check_output(os.path.join(folder, 'out.ecsv')) == os.path.join(
    ...     os.path.realpath(folder), 'out.ecsv')
    True
    >>> check_output(os.path.join(folder, '.', 'v.fits'), label='-o',
    ...              inputs=[(frame, 'IMAGE')])
    Traceback (most recent call last):
    ...
    ValueError: -o .../v.fits is the same file as IMAGE ...
    """
    path = os.fspath(path)
    if '\0' in path:
        raise ValueError(f'{label} {path!r}: a file name cannot hold a NUL '
                         'byte')
    if path.endswith((os.sep, os.altsep or os.sep)) or \
            os.path.basename(path) in ('', '.', '..'):
        raise ValueError(f'{label} {path}: names a folder, not a file (give '
                         'a file name, without a trailing /)')
    try:
        target = _resolve(path)
    except ValueError as exc:
        raise ValueError(f'{label} {exc}') from None
    name = os.fsencode(os.path.basename(target))
    limit = _name_max(os.path.dirname(target) or '.')
    if len(name) > limit:
        raise ValueError(f'{label} {path}: the file name is {len(name)} '
                         f'bytes long; the file system takes at most {limit}')
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise ValueError(f'{label} {path}: {exc.strerror}') from None
    if st is not None:
        kind = _special_kind(st.st_mode)
        if kind is not None:
            raise ValueError(f'{label} {path}: is a {kind}; refusing to '
                             'replace it (give a regular file)')
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise ValueError(f'{label} {path}: folder {folder} does not exist')
    for other, what in inputs:
        if other is not None and (_same_file(target, other) or os.path.
                                  realpath(other) == target):
            raise ValueError(f'{label} {path} is the same file as {what} '
                             f'{os.fspath(other)}; refusing to overwrite an '
                             'input')
    image = None if st is None else _fits_image(target)
    if image is not None:
        raise ValueError(f'{label} {path}: is a FITS image ({image}), not a '
                         'table; refusing to replace it (give another name)')
    return target


def _fits_image(path):
    """Where a FITS file holds image data (``'HDU 0, 60 x 70'``), else None
    (not FITS, unreadable, or only tables: a photometry table written as
    FITS has an empty primary HDU)."""
    try:
        with open(path, 'rb') as f:
            if f.read(9) != b'SIMPLE  =':
                return None
        from astropy.io import fits

        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                for index, hdu in enumerate(hdul):
                    if not hdu.is_image:
                        continue
                    shape = tuple(hdu.shape)
                    if shape and all(n > 0 for n in shape):
                        size = ' x '.join(str(n) for n in shape)
                        return f'HDU {index}, {size}'
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return None


def _special_kind(mode):
    for test, kind in ((stat.S_ISDIR, 'directory'), (stat.S_ISFIFO, 'FIFO'),
                       (stat.S_ISCHR, 'character device'),
                       (stat.S_ISBLK, 'block device'),
                       (stat.S_ISSOCK, 'socket')):
        if test(mode):
            return kind
    return None


def atomic_write(path, write, *, inputs=(), label='output'):
    """
    Write a file atomically with ``write(temporary_path)``.

    The temporary file ``.NAME.XXXX.tmp`` is made in the destination's folder
    (so the final rename never crosses file systems), given the mode of the
    file it replaces (a new file gets ``0o666`` less the umask), filled by
    ``write``, flushed to disk and moved over the destination with
    `os.replace`. On any error it is removed and the destination is left as
    it was. A symbolic link is written through to its target.

    Parameters
    ----------
    path : str or path-like
        The destination file (its folder must exist).
    write : callable
        ``write(tmp_path)`` writes the whole content to the file
        ``tmp_path`` (a str); its return value is ignored.
    inputs : iterable of tuple, optional
        ``(path, label)`` of each input file of the same run (a str or
        path-like and how to name it, e.g. ``(frame, 'IMAGE')``): an output
        that is the same file (same device and inode: another spelling, a
        symbolic or hard link) is refused. Default none.
    label : str, optional
        How to name the output in messages, e.g. an option such as
        ``'-o'`` (default ``'output'``).

    Returns
    -------
    target : str
        The file written (a symbolic link followed).

    Raises
    ------
    TypeError
        If ``write`` is not callable.
    ValueError
        Naming ``label`` and the path, before anything is written: the
        output is one of ``inputs``, a directory (or a name ending in
        ``/``), a FIFO, a device or a socket, a symbolic-link loop, a name
        longer than the file system takes, or its folder does not exist.
    OSError
        When writing fails (a full disk, no permission); the message names
        the destination and the reason.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ccdphot_ext.utils.files import atomic_write
    >>> path = Path(tempfile.mkdtemp()) / 'note.txt'
    >>> _ = atomic_write(path, lambda tmp: Path(tmp).write_text('hello'))
    >>> path.read_text()
    'hello'
    """
    if not callable(write):
        raise TypeError('write must be a function write(tmp_path) that '
                        f'writes the content, got {type(write).__name__}')
    path = os.fspath(path)
    target = check_output(path, inputs=inputs, label=label)
    folder = os.path.dirname(target)
    prefix = os.path.basename(hidden_sibling(target, _TEMP_TAIL))
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = _default_mode()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'{prefix}.', suffix='.tmp',
                                   dir=folder)
        os.close(fd)
        write(tmp)
        os.chmod(tmp, mode)  # after: some writers replace the file
        with open(tmp, 'rb') as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, target)
        tmp = None
        _fsync_folder(folder)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OSError(exc.errno, f'{label} {path}: cannot write '
                                 f'({reason})') from exc
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)
    return target


def _fsync_folder(folder):
    """Make the rename itself durable (best effort: not every OS can)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_table_atomic(table, path, *, format=None, inputs=(),
                       label='output', text_cache=None):
    """
    Write a table so that ``path`` is never left half-written.

    `atomic_write` with astropy's table writer: the table goes to a
    temporary file in the same folder, is flushed to disk and replaces
    ``path`` in one step, keeping the mode of the file it replaces.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The table (a `~astropy.table.QTable` too); for FITS, ``meta``
        values a header cannot hold are written as JSON text.
    path : str or path-like
        The destination file (its folder must exist); an existing file is
        replaced.
    format : str, optional
        Any astropy table writer format; None (default): from the
        extension (``.fits`` a FITS binary table, ``.csv`` CSV, anything
        else ECSV).
    inputs : iterable of tuple, optional
        ``(path, label)`` of each input file of the same run (a str or
        path-like and how to name it, e.g. ``(frame, 'IMAGE')``): an output
        that is the same file (same device and inode: another spelling, a
        symbolic or hard link) is refused. Default none.
    label : str, optional
        How to name the output in messages, e.g. an option such as
        ``'-o'`` (default ``'output'``).
    text_cache : ``LineCache``, optional
        For ECSV: the rows already made into text by earlier writes of the
        same growing table (or ahead of the write), taken from it, and the
        rows made into text now kept in it; None (default): every row made
        into text. The file is the same either way.

    Raises
    ------
    TypeError
        If ``table`` is not an astropy table.
    ValueError
        Naming ``label`` and the path, before anything is written: the
        output is one of ``inputs``, a directory, a special file, or its
        folder does not exist; or ``format`` is not an astropy table
        writer; or ``text_cache`` is given for a format other than ECSV.
    OSError
        When writing fails (a full disk, no permission); the message names
        the destination and the reason.

    Examples
    --------
    >>> import os, tempfile
    >>> from astropy.table import QTable
    >>> from ccdphot_ext.utils.files import write_table_atomic
    >>> path = os.path.join(tempfile.mkdtemp(), 'lc.ecsv')
    >>> write_table_atomic(QTable({'a': [1, 2]}), path)
    >>> QTable.read(path)['a'].tolist()
    [1, 2]
    """
    from astropy.io.registry import IORegistryError, get_writer
    from astropy.table import Table

    if not isinstance(table, Table):
        raise TypeError('table must be an astropy Table or QTable, got '
                        f'{type(table).__name__}')
    fmt = table_format(path) if format is None else format
    try:
        get_writer(fmt, type(table))
    except IORegistryError:
        raise ValueError(f'format: astropy has no table writer {fmt!r} '
                         "(e.g. 'ascii.ecsv', 'ascii.csv', 'fits')") from None
    options = {}
    if fmt == 'fits':
        table = _fits_ready(table)
    elif fmt == 'ascii.ecsv':  # astropy's text, written faster
        fmt, options = ECSV_FORMAT, {'cache': text_cache}
    if text_cache is not None and not options:
        raise ValueError(f'text_cache: only ECSV keeps rows as text, not '
                         f'{fmt}; give None')

    def write(tmp):
        with warnings.catch_warnings():
            # long keys become HIERARCH cards, as intended
            warnings.filterwarnings('ignore', category=VerifyWarning)
            table.write(tmp, format=fmt, overwrite=True, **options)

    atomic_write(path, write, inputs=inputs, label=label)


def _fits_ready(table):
    """A view of ``table`` whose meta a FITS header can hold (JSON text)."""
    view = table.copy(copy_data=False)
    view.meta.clear()
    for key, value in table.meta.items():
        if not isinstance(value, (str, int, float, bool)) or value is None:
            value = json.dumps(value, default=repr)
        view.meta[key] = value
    return view
