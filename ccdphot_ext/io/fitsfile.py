# Licensed under a 3-clause BSD style license - see LICENSE
"""
Opening FITS files safely: every way a file can fail to be a 2-D frame
(missing, a directory, empty, not FITS, compressed and unreadable,
truncated, a corrupt header, a cube, no such HDU) becomes a
`FrameReadError` with a one-line message naming the file; non-standard
header cards give one summary warning; images come in native byte order,
scaled integers (``BSCALE``/``BZERO``) in float64. An HDU whose stored
header carries ``DATASUM``/``CHECKSUM`` (for a compressed image, the table
of its tiles) is verified when its image is read: data that do not match
their ``DATASUM`` are a `FrameReadError`, a header that no longer matches
its ``CHECKSUM`` (a keyword added by a tool that did not update it) a
warning. A pipe (``/dev/stdin``) is read whole before it is opened.
`~ccdphot_ext.read_frame` builds frames on these.
"""

import errno
import io
import os
import warnings
import zlib
from contextlib import contextmanager

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError, VerifyWarning
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.files import is_stream

try:  # a corrupt tile of a compressed (.fz) image
    from astropy.io.fits.hdu.compressed._compression import CfitsioException
except ImportError:  # pragma: no cover - astropy without tile compression
    CfitsioException = OSError

__all__ = []  # internal module: FrameReadError is public through io.fits

_FITS_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError,
                AttributeError, EOFError, zlib.error, VerifyError,
                CfitsioException)


class FrameReadError(OSError, ValueError):
    """A file that cannot be read as a 2-D frame (one-line message)."""


def check_path(path, what='file'):
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f'{what} must be a path (str or os.PathLike), got '
                        f'{type(path).__name__}') from None
    try:
        os.stat(path)
    except OSError as exc:
        raise FrameReadError(f'{path}: {stat_problem(path, exc)}') from None
    if os.path.isdir(path):
        raise FrameReadError(f'{path}: is a directory, not a FITS file')
    if not os.access(path, os.R_OK):
        raise FrameReadError(f'{path}: not readable (permission denied)')
    if not is_stream(path) and os.path.getsize(path) == 0:
        raise FrameReadError(f'{path}: empty file (0 bytes), not FITS')
    return path


def stat_problem(path, exc):
    """Why ``os.stat(path)`` failed, in words."""
    if exc.errno == errno.ELOOP:
        return 'symbolic link loop'
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f'broken symbolic link (to {os.readlink(path)})'
    if exc.errno == errno.ENOENT:
        return 'no such file'
    return (exc.strerror or str(exc)).lower()


def frame_size(path, *, hdu=None):
    """
    The size of a FITS image from its header, in words (for messages).

    Returns ``''`` when the header cannot be read.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from ccdphot_ext.io.fitsfile import frame_size
    >>> path = os.path.join(tempfile.mkdtemp(), 'f.fits')
    >>> fits.writeto(path, np.zeros((2048, 4096), np.float32))
    >>> frame_size(path)
    '4096 x 2048 float32 pixels, 32.0 MiB in memory'
    """
    try:
        header = fits.getheader(os.fspath(path), 0 if hdu is None else hdu)
        if header.get('NAXIS', 0) < 2 and hdu is None:
            header = fits.getheader(os.fspath(path), 1)
        nx, ny = int(header['NAXIS1']), int(header['NAXIS2'])
        bitpix = int(header['BITPIX'])
    except (OSError, KeyError, IndexError, ValueError, TypeError):
        return ''
    scaled = 'BSCALE' in header or 'BZERO' in header
    kind = ('float64' if scaled or bitpix == -64 else 'float32'
            if bitpix == -32 else f'int{abs(bitpix)}')
    nbytes = nx * ny * np.dtype(kind).itemsize
    size = (f'{nbytes / 2**20:.1f} MiB' if nbytes >= 2**20
            else f'{nbytes / 2**10:.0f} KiB')
    return f'{nx} x {ny} {kind} pixels, {size} in memory'


def hdu_problem(path, hdu):
    """
    Why ``hdu`` cannot be the frame of the FITS file ``path`` (no such
    HDU, no image in it, not 2-D), or None: when it can, when ``hdu`` is
    None, or when the file cannot be opened here (a pipe, a missing or
    broken file: that frame fails alone).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from ccdphot_ext.io.fitsfile import hdu_problem
    >>> path = os.path.join(tempfile.mkdtemp(), 'f.fits')
    >>> fits.writeto(path, np.zeros((30, 40), np.float32))
    >>> hdu_problem(path, 0) is None
    True
    >>> hdu_problem(path, 'SCI')  # doctest: +ELLIPSIS
    "...f.fits: hdu='SCI' not found (HDUs: 0 PRIMARY (30, 40))"
    """
    if hdu is None:
        return None
    try:
        path = check_path(path)
        if is_stream(path):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with open_fits(path) as hdul:
                try:
                    select_hdu(hdul, hdu, path)
                except FrameReadError as exc:  # the file is fine, not hdu
                    return str(exc)
    except (FrameReadError, TypeError):
        return None
    return None


def image_shape(path, *, hdu=None):
    """
    The ``(ny, nx)`` of the image `~ccdphot_ext.read_frame` would read
    from ``path``, from its headers alone (no pixel is read); None when the
    file is not a readable frame (a pipe is not opened: it could be read
    only once).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from ccdphot_ext.io.fitsfile import image_shape
    >>> path = os.path.join(tempfile.mkdtemp(), 'f.fits')
    >>> fits.writeto(path, np.zeros((1, 30, 40), np.float32))
    >>> image_shape(path)
    (30, 40)
    """
    try:
        path = check_path(path)
        if is_stream(path):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            with open_fits(path) as hdul:
                return _squeeze_shape(_image_shape(
                    hdul[select_hdu(hdul, hdu, path)]))
    except (FrameReadError, TypeError):
        return None


def _describe(exc, path, head=None):
    """A one-line reason for an astropy failure on ``path`` (``head``: its
    first bytes, when the file cannot be read again)."""
    if head is None:
        with open(path, 'rb') as fh:
            head = fh.read(80)
    if head[:2] in (b'\x1f\x8b', b'BZ') or head[:4] == b'PK\x03\x04':
        return f'compressed file could not be read ({exc})'.splitlines()[0]
    if not head.startswith(b'SIMPLE'):
        return 'not a FITS file (no SIMPLE card at the start)'
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
    if isinstance(exc, KeyError):
        return f'corrupt FITS header (missing or unreadable card {msg})'
    return f'corrupt or truncated FITS file ({type(exc).__name__}: {msg})'


def _describe_data(exc):
    """A one-line reason for image data astropy cannot read (the header
    was read)."""
    msg = ' '.join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, CfitsioException):
        return f'corrupt compressed image: a tile cannot be decompressed ({msg})'
    return f'corrupt or truncated image data ({type(exc).__name__}: {msg})'


#: how a stream that can be a FITS file begins: a primary header, or the
#: gzip or bzip2 compression astropy reads (checked before the stream is
#: read whole: an endless one, such as /dev/zero, is refused at once)
_STREAM_STARTS = (b'SIMPLE', b'\x1f\x8b', b'BZh')


@contextmanager
def open_fits(path):
    """
    Open with every astropy failure turned into FrameReadError; a truncated
    file is an error; non-standard header cards give one summary warning.
    The file handle is ours, so it is closed whatever astropy does. Image
    data are not scaled by astropy (`read_image` scales them in float64);
    a pipe is read whole first.
    """
    with open(path, 'rb') as fh:
        source, head = fh, None
        if is_stream(path):  # astropy needs to seek: read the pipe first
            head = fh.read(80)
            if not head:
                raise FrameReadError(f'{path}: nothing to read (an empty '
                                     'pipe or stream), not FITS')
            if not head.startswith(_STREAM_STARTS):  # /dev/zero, endless
                raise FrameReadError(f'{path}: not FITS (a stream that does '
                                     'not start with SIMPLE, nor with a '
                                     'gzip or bzip2 header)')
            source = io.BytesIO(head + fh.read())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try:
                hdul = fits.open(source, memmap=False, lazy_load_hdus=False,
                                 do_not_scale_image_data=True)
            except _FITS_ERRORS as exc:
                raise FrameReadError(
                    f'{path}: {_describe(exc, path, head)}') from exc
        try:
            for w in caught:
                if 'truncated' in str(w.message):
                    raise FrameReadError(f'{path}: '
                                         f'{str(w.message).splitlines()[0]}')
            odd = [w for w in caught if _is_card_warning(w)]
            if odd:
                first = str(odd[0].message).splitlines()[-1].strip()[:40]
                warnings.warn(f'{path}: {len(odd)} non-standard header '
                              f'card(s) (e.g. {first!r}) kept as they are',
                              AstropyUserWarning, stacklevel=4)
            for w in caught:
                if not _is_card_warning(w):
                    warnings.warn(w.message, w.category, stacklevel=4)
            yield hdul
        finally:
            hdul.close()


_CARD_WARNING = 'The following header keyword is invalid'


def _is_card_warning(w):
    return (issubclass(w.category, VerifyWarning)
            or str(w.message).startswith(_CARD_WARNING))


def ignore_card_warnings():
    """Silence warnings about cards that `open_fits` already reported."""
    warnings.filterwarnings('ignore', category=VerifyWarning)
    warnings.filterwarnings('ignore', message=_CARD_WARNING)


def _image_shape(hdu):
    if not hdu.is_image or hdu.header.get('NAXIS', 0) == 0:
        return None
    naxis = hdu.header['NAXIS']
    return tuple(int(hdu.header.get(f'NAXIS{i}', 0))
                 for i in range(naxis, 0, -1))


def _squeeze_shape(shape):
    """Drop leading length-1 axes: (1, ny, nx) is a 2-D frame."""
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    return shape


def is_2d_image(hdu):
    """Whether ``hdu`` holds a non-empty 2-D image (``(1, ny, nx)``
    counts)."""
    shape = _image_shape(hdu)
    return bool(shape) and len(_squeeze_shape(shape)) == 2 and 0 not in shape


def select_hdu(hdul, hdu, path):
    listing = ', '.join(f'{i} {h.name or "?"} '
                        f'{_image_shape(h) or type(h).__name__}'
                        for i, h in enumerate(hdul))
    if hdu is None:
        for index, h in enumerate(hdul):
            if is_2d_image(h):
                return index
        shapes = [(i, _image_shape(h)) for i, h in enumerate(hdul)]
        cubes = [(i, s) for i, s in shapes if s and len(_squeeze_shape(s)) > 2]
        if cubes:
            i, s = cubes[0]
            raise FrameReadError(
                f'{path}: HDU {i} is a {len(s)}-D image of shape {s}; '
                'ccdphot measures 2-D frames (slice the cube first)')
        raise FrameReadError(f'{path}: no 2-D image HDU (HDUs: {listing})')
    try:
        index = hdul.index_of(hdu)
    except (KeyError, IndexError, TypeError):
        raise FrameReadError(f'{path}: hdu={hdu!r} not found (HDUs: '
                             f'{listing})') from None
    if not 0 <= index < len(hdul):
        raise FrameReadError(f'{path}: hdu={hdu!r} not found (HDUs: '
                             f'{listing})')
    shape = _image_shape(hdul[index])
    if shape is None:
        raise FrameReadError(f'{path}: hdu={hdu!r} holds no image data '
                             f'({type(hdul[index]).__name__})')
    if len(_squeeze_shape(shape)) != 2:
        raise FrameReadError(f'{path}: hdu={hdu!r} is a {len(shape)}-D image '
                             f'of shape {shape}; ccdphot measures 2-D frames')
    return index


def _native(array):
    """Native byte order (usable by SEP and numba), no copy if already so."""
    array = np.asarray(array)
    if array.dtype.byteorder not in ('=', '|'):
        array = array.astype(array.dtype.newbyteorder('='))
    return array


#: keywords of how an image is stored, not of what it holds (removed from
#: the header of the scaled data)
STORAGE_KEYWORDS = ('BSCALE', 'BZERO', 'BLANK')


def _physical(raw, header, path, what):
    """
    The values of a stored image (``fits.open(do_not_scale_image_data=
    True)``): ``raw * BSCALE + BZERO`` in float64, and the pixels equal to
    ``BLANK`` (the FITS "no value" of an integer image, scaled or not) NaN.
    The unsigned-integer convention (``BSCALE = 1``, ``BZERO = 2**(n-1)``)
    and signed bytes (``BZERO = -128``) stay exact integers. Astropy would
    scale a 16-bit image to float32, losing digits of every pixel, and keep
    the ``BLANK`` value of an unscaled one as a pixel value.
    """
    bscale = _scale_card(header, 'BSCALE', 1.0, path, what)
    bzero = _scale_card(header, 'BZERO', 0.0, path, what)
    blank = header.get('BLANK') if raw.dtype.kind in 'iu' else None
    missing = None
    if isinstance(blank, (int, np.integer)) and not isinstance(blank, bool):
        missing = raw == blank
        if not missing.any():
            missing = None
    if raw.dtype.kind not in 'iuf' or (bscale == 1 and bzero == 0
                                       and missing is None):
        return raw
    bits = raw.dtype.itemsize * 8
    if missing is None and bscale == 1 and raw.dtype.kind == 'i' and \
            bzero == 2 ** (bits - 1):
        unsigned = raw.view(np.dtype(f'u{raw.dtype.itemsize}'))
        return unsigned ^ unsigned.dtype.type(1 << (bits - 1))
    if missing is None and bscale == 1 and raw.dtype == np.uint8 and \
            bzero == -128:
        return raw.view(np.int8) ^ np.int8(-128)
    data = raw.astype(np.float64) * bscale + bzero
    if missing is not None:
        data[missing] = np.nan
    return data


def _scale_card(header, key, default, path, what):
    """A finite number from ``BSCALE``/``BZERO`` (a zero BSCALE refused)."""
    value = header.get(key, default)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float('nan')
    if not np.isfinite(value) or (key == 'BSCALE' and value == 0):
        raise FrameReadError(f'{path}: {what}: {key} = '
                             f'{header.get(key)!r} cannot scale the data')
    return value


def read_image(hdul, index, path, what):
    """The image of HDU ``index``: physical values (`_physical`), native
    byte order, leading length-1 axes dropped; its stored ``DATASUM`` and
    ``CHECKSUM``, if any, verified (`verify_checksums`)."""
    hdu = hdul[index]
    compressed = isinstance(hdu, fits.CompImageHDU)
    if compressed:  # the tiles as stored, before they are decompressed
        verify_checksums(hdul, index, path, what)
    try:
        data = hdu.data
    except _FITS_ERRORS as exc:
        reason = (_describe_data(exc) if isinstance(exc, CfitsioException)
                  or is_stream(path) else _describe(exc, path))
        raise FrameReadError(f'{path}: {what}: {reason}') from exc
    if data is None:
        raise FrameReadError(f'{path}: {what} holds no data')
    if not compressed:  # the pixels read are the bytes stored
        verify_checksums(hdul, index, path, what, stored=data)
    data = _physical(_native(data), hdu.header, path, what)
    return data.reshape(_squeeze_shape(data.shape))


# -- the FITS checksum convention (DATASUM, CHECKSUM) -------------------------

#: a ones' complement sum of all 32-bit words: -0, what CHECKSUM makes the
#: sum of a whole HDU (header and data)
_ALL_ONES = 0xFFFFFFFF


def ones_complement_sum(octets, total=0):
    """
    The 32-bit ones' complement sum of the big-endian words of ``octets``
    (a 1-D ``uint8`` array; a last partial word padded with zeros), added
    to ``total``: the arithmetic of the FITS ``DATASUM`` and ``CHECKSUM``.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.io.fitsfile import ones_complement_sum
    >>> ones_complement_sum(np.array([0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 2],
    ...                              np.uint8))  # the carry wraps around
    2
    """
    octets = np.asarray(octets, np.uint8).reshape(-1)
    extra = octets.size % 4
    if extra:
        total += int.from_bytes(octets[octets.size - extra:].tobytes()
                                + bytes(4 - extra), 'big')
        octets = octets[:octets.size - extra]
    words = octets.view('>u4')
    for start in range(0, words.size, 1 << 30):  # no uint64 overflow
        total += int(words[start:start + (1 << 30)].sum(dtype=np.uint64))
    while total >> 32:
        total = (total & _ALL_ONES) + (total >> 32)
    return total


def _read_at(fileobj, offset, size):
    """``size`` bytes of the open FITS file at ``offset``, as ``uint8``
    (its position kept)."""
    position = fileobj.tell()
    try:
        fileobj.seek(offset)
        return np.frombuffer(fileobj.read(max(size, 0)), np.uint8)
    finally:
        fileobj.seek(position)


def _checksum_cards(header):
    """The values of the ``DATASUM`` and ``CHECKSUM`` cards of a header
    as stored (bytes), None when absent."""
    values = {}
    for start in range(0, len(header) - 79, 80):
        key = header[start:start + 8].tobytes().rstrip()
        if key == b'END':
            break
        if key in (b'DATASUM', b'CHECKSUM'):
            card = header[start:start + 80].tobytes().decode('ascii',
                                                             'replace')
            value = card[10:].split('/')[0].strip().strip("'").strip()
            values[key.decode()] = value
    return values.get('DATASUM'), values.get('CHECKSUM')


def _stored_bytes(array):
    """The bytes of an image as a FITS file stores them (big-endian)."""
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == '<' or (array.dtype.byteorder == '=' and
                                        np.little_endian):
        array = array.astype(array.dtype.newbyteorder('>'))
    return array.reshape(-1).view(np.uint8)


def verify_checksums(hdul, index, path, what, *, stored=None):
    """
    Verify HDU ``index`` against the ``DATASUM`` and ``CHECKSUM`` of its
    header as stored (for a compressed image, the table of its tiles); an
    HDU without them is not read again.

    Data that do not match their ``DATASUM`` changed after they were
    written (a corrupt tile may still decompress, to wrong pixels): a
    `FrameReadError` naming the file and ``what``. A header that does not
    match its ``CHECKSUM`` while the data match their ``DATASUM`` was
    edited after it was written (a keyword added by a tool that does not
    update ``CHECKSUM``): the file stays readable, with an
    `~astropy.utils.exceptions.AstropyUserWarning` naming it. A
    ``CHECKSUM`` without ``DATASUM`` cannot tell the header from the data:
    a mismatch warns.

    ``stored``: the image as read (``do_not_scale_image_data``), summed in
    memory instead of reading the data from the file again (only the
    padding of the last block is read).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from ccdphot_ext.io.fitsfile import open_fits, verify_checksums
    >>> path = Path(tempfile.mkdtemp()) / 'f.fits'
    >>> fits.writeto(path, np.arange(12.0).reshape(3, 4), checksum=True)
    >>> raw = bytearray(path.read_bytes())
    >>> raw[2880 + 40] ^= 1  # one bit of one pixel
    >>> _ = path.write_bytes(raw)
    >>> with open_fits(path) as hdul:  # doctest: +ELLIPSIS
    ...     verify_checksums(hdul, 0, path, 'HDU 0')
    Traceback (most recent call last):
    ...
    ccdphot_ext.io.fitsfile.FrameReadError: ...f.fits: HDU 0: the data do \
not match their DATASUM (stored ..., computed ...): the file changed after \
it was written (corrupt), its pixels cannot be trusted
    """
    info = hdul.fileinfo(index)
    fileobj, start, data_start = info['file'], info['hdrLoc'], info['datLoc']
    header = _read_at(fileobj, start, data_start - start)
    datasum, checksum = _checksum_cards(header)
    if datasum is None and checksum is None:
        return
    if stored is None:
        computed = ones_complement_sum(_read_at(fileobj, data_start,
                                                info['datSpan']))
    else:
        octets = _stored_bytes(stored)
        padding = _read_at(fileobj, data_start + octets.size,
                           info['datSpan'] - octets.size)
        computed = ones_complement_sum(
            np.concatenate([np.zeros(octets.size % 4, np.uint8), padding]),
            ones_complement_sum(octets))
    if datasum is not None and datasum.lstrip('0') != str(computed).lstrip('0'):
        raise FrameReadError(
            f'{path}: {what}: the data do not match their DATASUM (stored '
            f'{datasum}, computed {computed}): the file changed after it '
            'was written (corrupt), its pixels cannot be trusted')
    if checksum is not None and \
            ones_complement_sum(header, computed) != _ALL_ONES:
        which = ('the header was edited after it was written (by a tool '
                 'that did not update CHECKSUM) or is corrupt; the data '
                 'match their DATASUM and are read, check its keywords'
                 if datasum is not None else 'without a DATASUM it cannot '
                 'tell whether the header or the data changed; read as '
                 'they are')
        warnings.warn(f'{path}: {what}: the HDU does not match its '
                      f'CHECKSUM: {which}', AstropyUserWarning, stacklevel=4)
