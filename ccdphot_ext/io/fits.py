# Licensed under a 3-clause BSD style license - see LICENSE
"""
Read FITS frames into `~astropy.nddata.CCDData`, with their uncertainty,
mask, unit, header and WCS, and with clear errors for files that are not
usable frames.

Everything a bad file can do (missing, a directory, empty, text, truncated,
corrupt header, a cube, a table, no such HDU) raises `FrameReadError`, a
subclass of both `OSError` and `ValueError` with a one-line message naming
the file and the problem (the astropy exception, if any, is chained as its
cause).
"""

import errno
import os
import warnings
import zlib
from contextlib import contextmanager

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyError, VerifyWarning
from astropy.nddata import (
    CCDData,
    InverseVariance,
    NDUncertainty,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from .header import INHERITED_TAG, unit_from_header

__all__ = ['FrameReadError', 'read_frame', 'UNCERTAINTY_TYPES']

#: Names accepted by ``uncertainty_type`` and the class each maps to.
UNCERTAINTY_TYPES = {'std': StdDevUncertainty, 'var': VarianceUncertainty,
                     'ivar': InverseVariance}

#: Extension names searched (in order) when ``uncertainty`` is not given,
#: with the kind of map each holds unless its UTYPE card says otherwise.
_UNCERTAINTY_EXTENSIONS = (('UNCERT', 'std'), ('ERR', 'std'),
                           ('ERROR', 'std'), ('SIGMA', 'std'),
                           ('VAR', 'var'), ('VARIANCE', 'var'),
                           ('IVAR', 'ivar'), ('INVVAR', 'ivar'))
#: Mask extensions searched by default. Not WHT or DQ: a weight map may be
#: an exposure map, and data-quality bits are not all bad pixels; name them
#: with ``uncertainty=`` / ``mask=`` when they are what you want.
_MASK_EXTENSIONS = ('MASK', 'BPM')
_UTYPES = {'StdDevUncertainty': 'std', 'VarianceUncertainty': 'var',
           'InverseVariance': 'ivar'}
_FITS_ERRORS = (OSError, ValueError, KeyError, TypeError, IndexError,
                AttributeError, EOFError, zlib.error, VerifyError)


class FrameReadError(OSError, ValueError):
    """A file that cannot be read as a 2-D frame (one-line message)."""


def _check_path(path, what='file'):
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f'{what} must be a path (str or os.PathLike), got '
                        f'{type(path).__name__}') from None
    try:
        os.stat(path)
    except OSError as exc:
        raise FrameReadError(f'{path}: {_stat_problem(path, exc)}') from None
    if os.path.isdir(path):
        raise FrameReadError(f'{path}: is a directory, not a FITS file')
    if os.path.getsize(path) == 0:
        raise FrameReadError(f'{path}: empty file (0 bytes), not FITS')
    return path


def _stat_problem(path, exc):
    """Why ``os.stat(path)`` failed, in words."""
    if exc.errno == errno.ELOOP:
        return 'symbolic link loop'
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return f'broken symbolic link (to {os.readlink(path)})'
    if exc.errno == errno.ENOENT:
        return 'no such file'
    return (exc.strerror or str(exc)).lower()


def _frame_size(path, *, hdu=None):
    """
    The size of a FITS image from its header, in words (for messages).

    Returns ``''`` when the header cannot be read.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from ccdphot_ext.io.fits import _frame_size
    >>> path = os.path.join(tempfile.mkdtemp(), 'f.fits')
    >>> fits.writeto(path, np.zeros((2048, 4096), np.float32))
    >>> _frame_size(path)
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


def _describe(exc, path):
    """A one-line reason for an astropy failure on ``path``."""
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


@contextmanager
def _open(path):
    """
    Open with every astropy failure turned into FrameReadError; a truncated
    file is an error; non-standard header cards give one summary warning.
    The file handle is ours, so it is closed whatever astropy does.
    """
    with open(path, 'rb') as fh:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try:
                hdul = fits.open(fh, memmap=False, lazy_load_hdus=False)
            except _FITS_ERRORS as exc:
                raise FrameReadError(f'{path}: {_describe(exc, path)}') \
                    from exc
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


def _ignore_card_warnings():
    """Silence warnings about cards that `_open` already reported."""
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


def _select_hdu(hdul, hdu, path):
    listing = ', '.join(f'{i} {h.name or "?"} '
                        f'{_image_shape(h) or type(h).__name__}'
                        for i, h in enumerate(hdul))
    if hdu is None:
        for index, h in enumerate(hdul):
            shape = _image_shape(h)
            if shape and len(_squeeze_shape(shape)) == 2 and 0 not in shape:
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


def _read_image(hdul, index, path, what):
    hdu = hdul[index]
    try:
        data = hdu.data
    except _FITS_ERRORS as exc:
        raise FrameReadError(f'{path}: {what}: {_describe(exc, path)}') \
            from exc
    if data is None:
        raise FrameReadError(f'{path}: {what} holds no data')
    data = _native(data)
    return data.reshape(_squeeze_shape(data.shape))


def _wcs(header):
    """The celestial WCS of a header, or None (a linear WCS is not kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except (ValueError, KeyError, TypeError, MemoryError) as exc:
            warnings.warn(f'ignoring the header WCS: {exc}'.splitlines()[0],
                          AstropyUserWarning, stacklevel=3)
            return None
    return wcs if wcs.has_celestial else None


def _find_extension(hdul, names, exclude):
    for name in names:
        key = name[0] if isinstance(name, tuple) else name
        if key in hdul and hdul.index_of(key) != exclude:
            return name
    return None


def _load_extra(source, hdul, path, shape, what, exclude):
    """
    Read an uncertainty or mask image: ``source`` is an HDU name or index
    in ``path`` or a path to another FITS file. Returns (array, header).
    """
    if isinstance(source, (str, int)) and not isinstance(source, bool):
        try:
            index = hdul.index_of(source)
            if not 0 <= index < len(hdul):
                raise IndexError(source)
        except (KeyError, IndexError):
            index = None
        if index is not None:
            if index == exclude:
                raise FrameReadError(f'{path}: {what}={source!r} is the '
                                     'science HDU itself')
            arr = _read_image(hdul, index, path, f'{what} HDU {source!r}')
            return arr, hdul[index].header
        if isinstance(source, int):
            raise FrameReadError(f'{path}: {what}={source!r}: no such HDU')
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f'{what} must be an HDU name or index, a path, an '
                        f'array or an NDUncertainty, got '
                        f'{type(source).__name__}')
    other = os.fspath(source)
    if not os.path.exists(other):
        raise FrameReadError(f'{path}: {what}={source!r} is neither an HDU '
                             'of the file nor an existing file')
    other = _check_path(other, what)
    with _open(other) as hdul2:
        index = _select_hdu(hdul2, None, other)
        arr = _read_image(hdul2, index, other, what)
        return arr, hdul2[index].header


def _check_shape(arr, shape, what, path):
    if arr.shape != shape:
        raise FrameReadError(f'{path}: {what} shape {arr.shape} does not '
                             f'match the data shape {shape}')


def _uncertainty_object(arr, kind, header):
    cls = UNCERTAINTY_TYPES[kind]
    unit = None
    if header is not None:
        unit = unit_from_header(header)
    arr = np.asarray(arr, dtype=np.float64)
    return cls(arr, unit=unit)


def read_frame(path, *, hdu=None, uncertainty=None, uncertainty_type=None,
               mask=None, unit=None):
    """
    Read a FITS frame into a `~astropy.nddata.CCDData`.

    Parameters
    ----------
    path : str or path-like
        The FITS file (``.fits``, ``.fz``, ``.gz`` ...).
    hdu : int, str or (str, int), optional
        The science HDU; default the first HDU holding a 2-D image (a
        ``(1, ny, nx)`` image counts as 2-D).
    uncertainty : str, int, path, array, `~astropy.nddata.NDUncertainty`
        The uncertainty map: an HDU name or index in the same file, another
        FITS file, or the map itself. Default: the first of the extensions
        UNCERT (as `~astropy.nddata.CCDData` writes it), ERR, ERROR, SIGMA,
        VAR, VARIANCE, IVAR, INVVAR found in the file, if any.
    uncertainty_type : {'std', 'var', 'ivar'}, optional
        What the map holds. Default: the extension's UTYPE card if present,
        else by name (VAR/VARIANCE variance, IVAR/INVVAR inverse
        variance), else a standard deviation.
    mask : str, int, path or array_like, optional
        Bad-pixel mask (non-zero = bad), as for ``uncertainty``. Default:
        the MASK or BPM extension, if any (a DQ extension only when named,
        as ``mask='DQ'``: every non-zero bit then counts as bad).
    unit : `~astropy.units.Unit` or str, optional
        The data unit. Default the header's BUNIT; without one the data
        are taken to be in ``adu`` (with an `AstropyUserWarning`).

    Returns
    -------
    ccd : `~astropy.nddata.CCDData`
        Data in native byte order, the header as ``meta`` (for an image in
        an extension, completed by the primary header's keywords as
        `~astropy.nddata.CCDData.read` does: GAIN, EXPTIME, DATE-OBS...; an
        extension keyword wins, and each inherited card's comment starts
        with ``[primary HDU]``), the
        uncertainty (its class says std/var/ivar), the mask, and the
        celestial WCS if the header holds one (else None).

    Raises
    ------
    FrameReadError
        Missing, empty, non-FITS, truncated or corrupt files, no 2-D image,
        a missing HDU, or an uncertainty/mask whose shape differs.
    ValueError, TypeError
        A bad ``uncertainty_type``, ``unit`` or argument type.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from astropy.nddata import CCDData, VarianceUncertainty
    >>> from ccdphot_ext import read_frame
    >>> path = os.path.join(tempfile.mkdtemp(), 'frame.fits')
    >>> CCDData(np.full((4, 5), 100.0), unit='adu', meta={'GAIN': 1.9},
    ...         uncertainty=VarianceUncertainty(np.full((4, 5), 4.0))
    ...         ).write(path)
    >>> ccd = read_frame(path)
    >>> ccd.unit, type(ccd.uncertainty).__name__, ccd.meta['GAIN']
    (Unit("adu"), 'VarianceUncertainty', 1.9)
    """
    path = _check_path(path)
    if uncertainty_type is not None and uncertainty_type not in \
            UNCERTAINTY_TYPES:
        raise ValueError(f'uncertainty_type must be one of '
                         f'{tuple(UNCERTAINTY_TYPES)}, got '
                         f'{uncertainty_type!r}')
    if unit is not None:
        try:
            unit = u.Unit(unit)
        except (ValueError, TypeError) as exc:
            raise ValueError(f'unit: {unit!r} is not a unit ({exc})') from None
    with _open(path) as hdul, warnings.catch_warnings():
        _ignore_card_warnings()  # reported once by _open
        index = _select_hdu(hdul, hdu, path)
        header = _inherit_primary(hdul, index)
        data = _read_image(hdul, index, path, f'HDU {index}')
        shape = data.shape

        unc_obj = None
        if isinstance(uncertainty, NDUncertainty):
            unc_obj = uncertainty
            _check_shape(np.asarray(unc_obj.array), shape, 'uncertainty',
                         path)
        elif uncertainty is not None and not isinstance(
                uncertainty, (str, int, os.PathLike)):
            arr = np.asarray(uncertainty, dtype=np.float64)
            _check_shape(arr, shape, 'uncertainty', path)
            unc_obj = _uncertainty_object(arr, uncertainty_type or 'std',
                                          None)
        else:
            source, default_kind = uncertainty, None
            if source is None:
                found = _find_extension(hdul, _UNCERTAINTY_EXTENSIONS, index)
                if found is not None:
                    source, default_kind = found
            if source is not None:
                arr, ext_header = _load_extra(source, hdul, path, shape,
                                              'uncertainty', index)
                _check_shape(arr, shape, 'uncertainty', path)
                kind = (uncertainty_type
                        or _UTYPES.get(str(ext_header.get('UTYPE', '')))
                        or default_kind or _kind_from_name(source))
                unc_obj = _uncertainty_object(arr, kind, ext_header)

        mask_arr = None
        if mask is not None and not isinstance(mask, (str, int,
                                                      os.PathLike)):
            mask_arr = np.asarray(mask)
        else:
            source = mask
            if source is None:
                source = _find_extension(hdul, _MASK_EXTENSIONS, index)
            if source is not None:
                mask_arr, _ = _load_extra(source, hdul, path, shape, 'mask',
                                          index)
        if mask_arr is not None:
            _check_shape(mask_arr, shape, 'mask', path)
            mask_arr = mask_arr.astype(bool)

    with warnings.catch_warnings():
        _ignore_card_warnings()
        if unit is None:
            unit = unit_from_header(header)
        if unit is None:
            warnings.warn(f'{path}: no (or blank) BUNIT in the header: data '
                          'taken to be in adu (pass unit=, or --unit to '
                          'ccdphot, to say otherwise)',
                          AstropyUserWarning, stacklevel=2)
            unit = u.adu
        try:
            return CCDData(data, unit=unit, uncertainty=unc_obj,
                           mask=mask_arr, meta=header, wcs=_wcs(header))
        except (ValueError, TypeError, u.UnitsError) as exc:
            raise FrameReadError(f'{path}: cannot build the frame: '
                                 f'{str(exc).splitlines()[0]}') from exc


def _inherit_primary(hdul, index):
    """
    The science HDU's header, completed by the primary header's keywords.

    As `~astropy.nddata.CCDData.read` does for a multi-extension file: a
    keyword of the extension wins, the primary's structural keywords are
    not copied, and an extension with ``INHERIT = F`` inherits nothing.
    Each inherited card's comment starts with `INHERITED_TAG`, so
    `~ccdphot_ext.detector_parameters` can say where a value came from.
    """
    header = hdul[index].header.copy()
    if index == 0 or header.get('INHERIT', True) is False:
        return header
    primary = hdul[0].header
    skip = {'SIMPLE', 'BITPIX', 'EXTEND', 'NEXTEND', 'BSCALE', 'BZERO',
            'BLANK', 'CHECKSUM', 'DATASUM', 'COMMENT', 'HISTORY', '',
            'INHERIT', 'EXTNAME', 'EXTVER', 'PCOUNT', 'GCOUNT'}
    for card in primary.cards:
        key = card.keyword
        if key in skip or key.startswith('NAXIS') or key in header:
            continue
        header.append((key, card.value,
                       f'{INHERITED_TAG} {card.comment}'.strip()),
                      end=True)
    return header


def _kind_from_name(source):
    name = str(source).upper()
    for ext, kind in _UNCERTAINTY_EXTENSIONS:
        if name == ext:
            return kind
    return 'std'
