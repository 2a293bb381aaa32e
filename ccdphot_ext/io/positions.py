# Licensed under a 3-clause BSD style license - see LICENSE
"""
Star positions from the tables users already have.

`read_positions` reads a positions table (a file or an astropy `Table`) and
returns the 0-based pixel positions ``x_center``, ``y_center`` that
photutils and `photometer` use, with the stars' ``id``. It recognises the
column names of photutils (3.0 and older), ``ccdphot find``, Source
Extractor and SEP catalogues, AstroImageJ measurement tables, and
right ascension/declination columns (converted with a WCS). 1-based
catalogues (Source Extractor's ``X_IMAGE``, AstroImageJ's ``X(FITS)``) are
shifted by one pixel. A blank or NaN coordinate is refused with its row
number: a star is never measured at a made-up position.
"""

import io
import os
import warnings

import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from ..utils.files import is_stream
from .fitsfile import stat_problem
from .wcs import celestial_wcs

__all__ = ['read_positions', 'PIXEL_COLUMNS', 'SKY_COLUMNS', 'ID_COLUMNS']

#: Pixel coordinate columns, in order of preference: ``(x, y, origin)``,
#: origin 0 for numpy/photutils pixels, 1 for FITS pixels (the first
#: pixel's centre is 1.0), which are shifted by one.
PIXEL_COLUMNS = (
    ('x_centroid', 'y_centroid', 0),   # photutils 3.0
    ('xcentroid', 'ycentroid', 0),     # photutils < 3.0
    ('x_center', 'y_center', 0),       # photutils 3.0, ccdphot_ext
    ('xcenter', 'ycenter', 0),         # photutils < 3.0 aperture_photometry
    ('x_fit', 'y_fit', 0),             # photutils PSF photometry
    ('x', 'y', 0),                     # SEP, plain tables
    ('X_IMAGE', 'Y_IMAGE', 1),         # Source Extractor (its apertures')
    ('XWIN_IMAGE', 'YWIN_IMAGE', 1),   # Source Extractor (windowed)
    ('X(FITS)', 'Y(FITS)', 1),         # AstroImageJ
)

#: Celestial coordinate columns (degrees unless the column has a unit),
#: converted to pixels with the ``wcs`` given to `read_positions`. A
#: `~astropy.coordinates.SkyCoord` column ``sky_centroid`` (photutils) is
#: also accepted.
SKY_COLUMNS = (
    ('ra', 'dec'),
    ('RA', 'DEC'),
    ('RA', 'Dec'),
    ('ALPHA_J2000', 'DELTA_J2000'),    # Source Extractor
    ('RA_deg', 'DEC_deg'),
)

#: Columns taken as the star ids (unique integers), in order of preference.
ID_COLUMNS = ('id', 'label', 'NUMBER')

_BOX_COLUMNS = ('box_x0', 'box_x1', 'box_y0', 'box_y1')

_FORMATS = {'.ecsv': 'ascii.ecsv', '.csv': 'ascii.csv', '.fits': 'fits',
            '.fit': 'fits', '.fts': 'fits', '.cat': 'ascii.sextractor',
            '.xls': 'ascii.tab', '.tsv': 'ascii.tab', '.tbl': 'ascii.tab'}


def _accepted_names():
    pix = ', '.join(f'{x}/{y}' for x, y, _ in PIXEL_COLUMNS)
    sky = ', '.join(f'{x}/{y}' for x, y in SKY_COLUMNS)
    return (f'pixel columns {pix}; or sky columns {sky}, sky_centroid '
            '(with a WCS)')


def _read_file(path, label, format):
    path = os.fspath(path)
    try:
        os.stat(path)
    except OSError as exc:  # a loop or a broken link named as such
        raise OSError(f'{label}: {stat_problem(path, exc)}') from None
    stream = is_stream(path)
    if os.path.isdir(path) or (not stream and os.path.getsize(path) == 0):
        raise ValueError(f'{label}: not a table (empty file or a directory)')
    ext = os.path.splitext(path)[1].lower()
    fmt = format or _FORMATS.get(ext)
    source, kwargs = path, {}
    if stream:  # a pipe is read once, whole
        with open(path, 'rb') as fh:
            content = fh.read()
        if not content:
            raise ValueError(f'{label}: nothing to read (an empty pipe)')
        source = _stream_content(content, fmt, label)
        if fmt is None and not isinstance(source, str):
            fmt = 'fits'
    if fmt == 'fits':
        kwargs['hdu'] = _fits_table_hdu(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            if fmt is None:  # let astropy guess (SExtractor, tab, ...)
                return Table.read(source, format='ascii')
            return Table.read(source, format=fmt, **kwargs)
    except Exception as exc:  # astropy raises many kinds for bad tables
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f'{label}: cannot read the table ({reason})') from exc


def _stream_content(content, fmt, label):
    """A piped table: FITS bytes as a file object, text as a string."""
    if fmt == 'fits' or content.startswith(b'SIMPLE  ='):
        return io.BytesIO(content)
    try:
        return content.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        raise ValueError(f'{label}: not a text table (the byte at offset '
                         f'{exc.start} is not UTF-8)') from None


def _fits_table_hdu(path):
    """The first table HDU, or LDAC_OBJECTS of a FITS_LDAC catalogue."""
    from astropy.io import fits

    try:
        if hasattr(path, 'seek'):
            path.seek(0)
        with fits.open(path) as hdul:
            names = [h.name for h in hdul]
            if 'LDAC_OBJECTS' in names:
                return 'LDAC_OBJECTS'
            for i, hdu in enumerate(hdul):
                if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                    return i
    except OSError:
        pass
    finally:
        if hasattr(path, 'seek'):
            path.seek(0)
    return 1


def _find_pair(colnames, pairs):
    """The first pair of ``pairs`` present in ``colnames`` (exact, then
    ignoring case), as the table's own names plus the pair's extras."""
    for pair in pairs:
        if pair[0] in colnames and pair[1] in colnames:
            return pair
    lower = {name.lower(): name for name in colnames}
    for pair in pairs:
        if pair[0].lower() in lower and pair[1].lower() in lower:
            return (lower[pair[0].lower()], lower[pair[1].lower()], *pair[2:])
    return None


def _blank_rows(column):
    """Boolean array: masked, NaN or inf cells of ``column``."""
    mask = np.zeros(len(column), dtype=bool)
    if getattr(column, 'mask', None) is not None:
        mask |= np.asarray(np.ma.getmaskarray(column))
    values = getattr(column, 'value', column)
    values = np.ma.getdata(np.asarray(values))
    if values.dtype.kind in 'fc':
        mask |= ~np.isfinite(values)
    return mask


def _as_float(table, names, label):
    for name in names:
        blank = _blank_rows(table[name])
        if blank.any():
            raise ValueError(
                f'{label}: column {name} is blank or NaN in row(s) '
                f'{_row_list(blank)} (rows counted from 1); fill or remove '
                'those rows: a star is never measured at a made-up position')
    try:
        return [np.asarray(np.ma.getdata(getattr(table[n], 'value',
                                                 table[n])), dtype=float)
                for n in names]
    except (TypeError, ValueError) as exc:
        raise ValueError(f'{label}: columns {names[0]}/{names[1]} are not '
                         'numbers') from exc


def _angle(column, name):
    """A coordinate column as an angle: its own unit, else degrees."""
    values = np.asarray(np.ma.getdata(getattr(column, 'value', column)),
                        dtype=float)
    if getattr(column, 'unit', None) is None:
        return values * u.deg
    try:
        return (values * column.unit).to(u.deg)
    except u.UnitsError as exc:
        raise ValueError(f'column {name} has unit {column.unit}, not an '
                         'angle') from exc


def _sky_to_pixel(table, label, wcs, pair):
    from astropy.coordinates import SkyCoord

    sky_wcs = celestial_wcs(wcs) if wcs is not None else None
    if sky_wcs is None:
        what = 'sky_centroid' if pair is None else f'{pair[0]}/{pair[1]}'
        raise ValueError(f'{label}: the table gives sky positions ({what}) '
                         'but no celestial WCS was given to convert them '
                         'to pixels (wcs=, or a frame with a WCS)')
    if pair is None:
        coords = table['sky_centroid']
        _as_float(Table({'ra': coords.ra.deg, 'dec': coords.dec.deg}),
                  ('ra', 'dec'), label)
    else:
        _as_float(table, pair, label)  # refuses blank cells
        coords = SkyCoord(*(_angle(table[name], name) for name in pair))
    x, y = sky_wcs.world_to_pixel(coords)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    lost = ~(np.isfinite(x) & np.isfinite(y))
    if lost.any():
        first = int(np.flatnonzero(lost)[0])
        what = 'sky_centroid' if pair is None else f'{pair[0]}/{pair[1]}'
        raise ValueError(
            f'{label}: {what} of row(s) {_row_list(lost)} (the first: '
            f'{coords[first].ra.deg:.6g}, {coords[first].dec.deg:.6g} deg) '
            'has no pixel position in the WCS (the far side of the sky for '
            'its projection); remove those rows or give the right table')
    return x, y


def _row_list(rows):
    """Row numbers counted from 1, at most five, for a message."""
    index = np.flatnonzero(rows)
    text = ', '.join(str(i + 1) for i in index[:5])
    return text + (f' and {index.size - 5} more' if index.size > 5 else '')


#: the largest id kept exactly: int64, and 2**53 for ids stored as floats
_MAX_INT_ID, _MAX_FLOAT_ID = np.iinfo(np.int64).max, 2 ** 53


def _ids(table, label):
    name = next((n for n in ID_COLUMNS if n in table.colnames), None)
    if name is None:
        return np.arange(1, len(table) + 1), None
    blank = _blank_rows(table[name])
    if blank.any():
        raise ValueError(f'{label}: column {name} is blank in row(s) '
                         f'{_row_list(blank)}')
    ids = np.asarray(np.ma.getdata(table[name]))
    if ids.dtype.kind == 'f' and np.all(ids == np.round(ids)):
        _ids_fit(ids, _MAX_FLOAT_ID, name, label, 'floating point')
        ids = ids.astype(np.int64)
    if ids.dtype.kind not in 'iu' or len(np.unique(ids)) != len(ids):
        raise ValueError(f'{label}: the {name} column must hold unique '
                         'integers (the star ids)')
    if ids.dtype.kind == 'u':
        _ids_fit(ids, _MAX_INT_ID, name, label, 'a 64-bit integer')
    return ids.astype(np.int64), name


def _ids_fit(ids, limit, name, label, kind):
    """Refuse ids too large to be kept exactly (they would wrap around or
    lose digits), naming the rows."""
    big = (ids > np.uint64(limit) if ids.dtype.kind == 'u'
           else np.abs(ids) > limit)
    if big.any():
        first = ids[np.flatnonzero(big)[0]]
        shown = f'{first:g}' if ids.dtype.kind == 'f' else f'{first}'
        raise ValueError(f'{label}: column {name} holds ids too large to '
                         f'keep exactly ({shown}, row(s) {_row_list(big)}):'
                         f' at most {int(limit)} in magnitude as {kind}; '
                         'renumber the stars')


def _pixels(table, label, wcs, columns):
    """x, y (0-based), and the description of where they came from."""
    names = table.colnames
    if columns is not None:
        try:
            xname, yname = columns
        except (TypeError, ValueError):
            raise TypeError('columns must be a pair of column names '
                            '(x, y) or (ra, dec)') from None
        missing = [n for n in (xname, yname) if n not in names]
        if missing:
            raise ValueError(f'{label}: no column {missing[0]!r}; the table '
                             f'has {names}')
        known = {(x, y): o for x, y, o in PIXEL_COLUMNS}
        if (xname, yname) in [p[:2] for p in SKY_COLUMNS] or (
                table[xname].unit is not None
                and table[xname].unit.physical_type == 'angle'):
            x, y = _sky_to_pixel(table, label, wcs, (xname, yname))
            return x, y, (xname, yname, 'sky')
        origin = known.get((xname, yname), 0)
        x, y = _as_float(table, (xname, yname), label)
        return x - origin, y - origin, (xname, yname, origin)
    pair = _find_pair(names, PIXEL_COLUMNS)
    if pair is not None:
        x, y = _as_float(table, pair[:2], label)
        return x - pair[2], y - pair[2], pair
    pair = _find_pair(names, SKY_COLUMNS)
    if pair is not None or 'sky_centroid' in names:
        x, y = _sky_to_pixel(table, label, wcs, pair)
        name = pair or ('sky_centroid', 'sky_centroid')
        return x, y, (*name[:2], 'sky')
    raise ValueError(f'{label}: no position columns found among {names}; '
                     f'accepted: {_accepted_names()}')


def _copy_boxes(table, out, label):
    """
    Copy the suggested box columns of ``ccdphot find`` output (and their
    check). Either all four columns are there, filled with whole pixel
    indices that make one non-empty box size, or none: anything else is
    refused, naming the column and the rows (a box is never silently
    replaced by another size).
    """
    present = [name for name in _BOX_COLUMNS if name in table.colnames]
    if not present:
        return
    if len(present) != len(_BOX_COLUMNS):
        missing = [name for name in _BOX_COLUMNS if name not in present]
        raise ValueError(f'{label}: has {", ".join(present)} but not '
                         f'{", ".join(missing)}; give all four suggested-box '
                         'columns or none')
    values = {}
    for name in _BOX_COLUMNS:
        blank = _blank_rows(table[name])
        if blank.any():
            raise ValueError(f'{label}: column {name} is blank or NaN in '
                             f'row(s) {_row_list(blank)} (rows counted from '
                             '1); fill them or remove the four box columns: '
                             'a star is never measured in a made-up box')
        try:
            v = np.asarray(np.ma.getdata(getattr(table[name], 'value',
                                                 table[name])), dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f'{label}: column {name} does not hold pixel '
                             'indices (numbers)') from None
        odd = v != np.round(v)
        if odd.any():
            raise ValueError(f'{label}: column {name} holds a fraction in '
                             f'row(s) {_row_list(odd)}; box bounds are whole '
                             'pixel indices')
        values[name] = v.astype(np.int64)
    width = values['box_x1'] - values['box_x0']
    height = values['box_y1'] - values['box_y0']
    for size, lo, hi in ((width, 'box_x0', 'box_x1'),
                         (height, 'box_y0', 'box_y1')):
        if np.any(size < 1):
            raise ValueError(f'{label}: {hi} must exceed {lo} (row(s) '
                             f'{_row_list(size < 1)}: an empty or reversed '
                             'box)')
    other = (width != width[0]) | (height != height[0])
    if other.any():
        k = int(np.flatnonzero(other)[0])
        raise ValueError(f'{label}: the suggested boxes differ in size (row 1:'
                         f' {width[0]} x {height[0]}, row {k + 1}: {width[k]} '
                         f'x {height[k]}); ccdphot find writes one size')
    for name in _BOX_COLUMNS:
        out[name] = values[name]
    # find_stars' check of the boxes it suggested (see box_flags)
    if table.meta.get('box_check') is not None:
        out.meta['box_check'] = table.meta['box_check']


def read_positions(positions, *, wcs=None, columns=None, format=None):
    """
    Star positions (0-based pixels) and ids from a table a user already has.

    Parameters
    ----------
    positions : str, path-like or `~astropy.table.Table`
        A table, or a file astropy can read: ECSV, CSV, FITS (a FITS_LDAC
        catalogue's ``LDAC_OBJECTS``), a Source Extractor ASCII_HEAD
        catalogue (``.cat``), an AstroImageJ measurement table (``.xls``,
        tab-separated) or any ASCII table astropy can guess.
    wcs : WCS or `~astropy.nddata.NDData`, optional
        The frame's celestial WCS (or the frame), needed only when the table
        gives right ascension and declination.
    columns : tuple of str, optional
        The ``(x, y)`` (0-based pixels) or ``(ra, dec)`` column names to
        use, overriding the recognised names below.
    format : str, optional
        An astropy table format, overriding the guess from the file
        extension.

    Returns
    -------
    table : `~astropy.table.QTable`
        Columns ``id``, ``x_center``, ``y_center`` (0-based pixels: the
        first pixel's centre is 0.0, as numpy and photutils), plus the
        suggested box columns ``box_x0``, ``box_x1``, ``box_y0``,
        ``box_y1`` when the input has them (``ccdphot find`` output).
        ``meta`` records the source, the columns read and their origin.

    Raises
    ------
    ValueError
        No recognised position columns (the message lists every accepted
        name), a blank/NaN coordinate (the message gives the row numbers),
        sky columns without a celestial WCS, ids that are not unique
        integers, an empty table.

    Notes
    -----
    The recognised column names (`PIXEL_COLUMNS`, `SKY_COLUMNS`; ids from
    ``id``, ``label`` or ``NUMBER``), their origins and what writes them are
    listed in :ref:`positions-tables`.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from ccdphot_ext import read_positions
    >>> cat = Table({'NUMBER': [7, 9], 'X_IMAGE': [11.0, 40.5],
    ...              'Y_IMAGE': [21.0, 8.0]})
    >>> pos = read_positions(cat)
    >>> pos['id'].tolist(), pos['x_center'].tolist(), pos['y_center'].tolist()
    ([7, 9], [10.0, 39.5], [20.0, 7.0])
    >>> pos.meta['x_column'], pos.meta['origin']
    ('X_IMAGE', 1)
    """
    if isinstance(positions, Table):
        label, table = 'positions', positions
    elif isinstance(positions, (str, os.PathLike)):
        label = f'positions {os.fspath(positions)}'
        table = _read_file(positions, label, format)
    else:
        raise TypeError('positions must be a file name or an astropy Table, '
                        f'got {type(positions).__name__}')
    if len(table) == 0:
        raise ValueError(f'{label}: the table has no rows')
    x, y, (xname, yname, origin) = _pixels(table, label, wcs, columns)
    ids, id_name = _ids(table, label)
    out = QTable({'id': ids, 'x_center': x, 'y_center': y})
    _copy_boxes(table, out, label)
    out.meta.update(
        positions_source=(os.path.abspath(os.fspath(positions))
                          if label != 'positions' else 'table'),
        x_column=xname, y_column=yname, origin=origin, id_column=id_name)
    return out
