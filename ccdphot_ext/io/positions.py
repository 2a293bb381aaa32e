# Licensed under a 3-clause BSD style license - see LICENSE
"""
Star positions from the tables users already have.

`read_positions` reads a positions table (a file or an astropy `Table`) and
returns the 0-based pixel positions ``x_center``, ``y_center`` that
photutils and `photometer` use, with the stars' ``id``. It recognises the
column names of photutils (3.0 and older), ``ccdphot find``, Source
Extractor and SEP catalogues, AstroImageJ measurement tables, and sky
positions in any celestial frame (equatorial, galactic, ... columns, VOTable
UCDs, SkyCoord columns; converted with a WCS). 1-based
catalogues (Source Extractor's ``X_IMAGE``, AstroImageJ's ``X(FITS)``) are
shifted by one pixel. A blank or NaN coordinate is refused with its row
number: a star is never measured at a made-up position.
"""

import contextlib
import io
import os
import warnings

import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from ..utils.files import is_stream
from .fitsfile import stat_problem
from .wcs import celestial_wcs, lonlat_text

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

#: Celestial coordinate columns ``(longitude, latitude, frame)``, in order
#: of preference, converted to pixels with the ``wcs`` given to
#: `read_positions` (degrees unless the column has a unit). The frame is an
#: astropy frame name: the WCS's own frame need not be the same (a galactic
#: catalogue on an equatorial frame is transformed). Without these names,
#: `read_positions` also finds the columns of a VOTable by their UCDs
#: (``pos.eq.ra``, ``pos.galactic.lon``, ...), the columns named after the
#: components of its ``frame`` argument (e.g. ``sgl``, ``sgb`` for
#: ``'supergalactic'``), or a `~astropy.coordinates.SkyCoord` column
#: (``sky_centroid`` of photutils), in its own frame.
SKY_COLUMNS = (
    ('ra', 'dec', 'icrs'),
    ('RA', 'DEC', 'icrs'),
    ('RA', 'Dec', 'icrs'),
    ('ALPHA_J2000', 'DELTA_J2000', 'icrs'),   # Source Extractor
    ('RA_deg', 'DEC_deg', 'icrs'),
    ('RA_ICRS', 'DE_ICRS', 'icrs'),           # VizieR
    ('RAJ2000', 'DEJ2000', 'fk5'),            # VizieR (FK5, J2000)
    ('l', 'b', 'galactic'),
    ('GLON', 'GLAT', 'galactic'),             # FITS, Spitzer, Herschel
    ('LII', 'BII', 'galactic'),               # HEASARC
    ('sgl', 'sgb', 'supergalactic'),
)

#: Columns taken as the star ids (unique integers), in order of preference.
ID_COLUMNS = ('id', 'label', 'NUMBER')

_BOX_COLUMNS = ('box_x0', 'box_x1', 'box_y0', 'box_y1')

_FORMATS = {'.ecsv': 'ascii.ecsv', '.csv': 'ascii.csv', '.fits': 'fits',
            '.fit': 'fits', '.fts': 'fits', '.cat': 'ascii.sextractor',
            '.xls': 'ascii.tab', '.tsv': 'ascii.tab', '.tbl': 'ascii.tab',
            '.xml': 'votable', '.vot': 'votable', '.votable': 'votable'}

#: the frame of each kind of VOTable position UCD (``pos.<kind>.lon``);
#: None: several astropy frames share the name, ``frame=`` decides
_UCD_FRAMES = {'eq': 'icrs', 'galactic': 'galactic',
               'supergalactic': 'supergalactic', 'ecliptic': None}


class OffFrameError(ValueError):
    """No position of a positions table lies on the frame (internal: the
    command line names its image)."""


class NoWCSError(ValueError):
    """The table gives sky positions but no celestial WCS was given to
    place them (internal: the command line says what to do instead)."""


def _accepted_names():
    pix = ', '.join(f'{x}/{y}' for x, y, _ in PIXEL_COLUMNS)
    sky = ', '.join(f'{x}/{y}' for x, y, _ in SKY_COLUMNS)
    return (f'pixel columns {pix}; or sky columns {sky}, a SkyCoord column '
            'such as sky_centroid, columns with position UCDs (with a WCS)')


def _read_file(path, label, format):
    path = os.fspath(path)
    try:
        os.stat(path)
    except OSError as exc:  # a loop or a broken link named as such
        raise OSError(f'{label}: {stat_problem(path, exc)}') from None
    stream = is_stream(path)
    if os.path.isdir(path) or (not stream and os.path.getsize(path) == 0):
        raise ValueError(f'{label}: not a table (empty file or a directory)')
    fmt = format or _FORMATS.get(_extension(path))
    source, kwargs = path, {}
    if stream:  # a pipe is read once, whole
        with open(path, 'rb') as fh:
            content = fh.read()
        if not content:
            raise ValueError(f'{label}: nothing to read (an empty pipe)')
        source = _stream_content(content, fmt, label)
    if fmt is None:  # astropy's own identification (FITS, VOTable, ...)
        fmt = _identified(source)
    if fmt == 'fits':
        kwargs['hdu'] = _fits_table_hdu(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            if fmt is None:  # let astropy guess (SExtractor, tab, ...)
                return Table.read(source, format='ascii')
            return Table.read(source, format=fmt, **kwargs)
    except Exception as exc:  # astropy raises many kinds for bad tables
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = lines[0].strip() if lines else type(exc).__name__
        how = f'as {fmt}' if fmt else 'as an ASCII table'
        raise ValueError(f'{label}: cannot read the table {how} ({reason})'
                         '; give its format (an astropy table format, e.g. '
                         "'votable', 'fits', 'ascii.csv')") from exc


def _extension(path):
    """The table's extension, that of ``name.fits.gz`` being ``.fits``."""
    root, ext = os.path.splitext(path.lower())
    if ext in ('.gz', '.bz2', '.xz'):
        ext = os.path.splitext(root)[1]
    return ext


def _identified(source):
    """The one format astropy identifies ``source`` as (from its name and
    its first bytes, as `~astropy.table.Table.read` does), else None."""
    from astropy.io import registry

    if isinstance(source, str) and not os.path.exists(source):
        return None  # piped text: the ASCII readers guess
    try:
        with contextlib.ExitStack() as stack:
            if hasattr(source, 'read'):
                path, fileobj = None, source
                stack.callback(source.seek, 0)
            else:
                path = source
                fileobj = stack.enter_context(open(source, 'rb'))
            formats = registry.identify_format('read', Table, path, fileobj,
                                               [], {})
    except (OSError, UnicodeDecodeError):
        return None
    return formats[0] if len(formats) == 1 else None


def _stream_content(content, fmt, label):
    """A piped table: FITS and VOTable bytes as a file object, text as a
    string."""
    if fmt in ('fits', 'votable') or content.startswith(b'SIMPLE  =') or (
            content.lstrip()[:5] in (b'<?xml', b'<VOTA')):
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
        values = [np.ma.getdata(np.asanyarray(getattr(table[n], 'value',
                                                      table[n])))
                  for n in names]
        if any(v.dtype.kind in 'bc' for v in values):
            # True/False or complex numbers are no pixel position (numpy
            # would read them as 1/0 or drop the imaginary part)
            raise TypeError('booleans or complex numbers')
        return [np.asarray(v, dtype=float) for v in values]
    except (TypeError, ValueError) as exc:
        raise ValueError(f'{label}: columns {names[0]}/{names[1]} are not '
                         'numbers') from exc


def _angle(column, name, label):
    """A coordinate column as an angle: its own unit, else degrees."""
    values = np.asarray(np.ma.getdata(getattr(column, 'value', column)),
                        dtype=float)
    if getattr(column, 'unit', None) is None:
        return values * u.deg
    try:
        return (values * column.unit).to(u.deg)
    except u.UnitsError as exc:
        raise ValueError(f'{label}: column {name} has unit {column.unit}, '
                         'not an angle') from exc


def check_frame(frame):
    """``frame`` as astropy takes it (a name, class or instance), or an
    error naming the parameter."""
    from astropy.coordinates import SkyCoord

    if frame is None:
        return None
    try:
        SkyCoord(0.0 * u.deg, 0.0 * u.deg, frame=frame)
    except (ValueError, TypeError) as exc:
        raise ValueError(f'frame must be a celestial frame astropy knows '
                         f"(e.g. 'icrs', 'galactic', 'fk5'), got {frame!r}: "
                         f'{str(exc).splitlines()[0]}') from None
    return frame


def _frame_name(frame):
    return frame if isinstance(frame, str) else getattr(frame, 'name',
                                                        str(frame))


def _frame_names(frame):
    """The longitude and latitude component names of ``frame`` (e.g.
    ``l``, ``b`` for galactic)."""
    from astropy.coordinates import SkyCoord

    names = SkyCoord(0.0 * u.deg, 0.0 * u.deg,
                     frame=frame).frame.representation_component_names
    return tuple(names)[:2]


def _ucd_pair(table):
    """``(lon, lat, frame)`` of the first pair of columns with VOTable
    position UCDs (``pos.eq.ra``/``pos.eq.dec``, ``pos.galactic.lon``/
    ``pos.galactic.lat``, ...), else None; frame None when the UCD does
    not say which of astropy's frames (ecliptic)."""
    found = {}
    for name in table.colnames:
        ucd = (getattr(table[name], 'meta', None) or {}).get('ucd') or ''
        for word in ucd.lower().split(';'):
            part = word.strip().split('.')
            if len(part) == 3 and part[0] == 'pos' and part[1] in _UCD_FRAMES:
                axis = {'ra': 'lon', 'dec': 'lat'}.get(part[2], part[2])
                if axis in ('lon', 'lat'):
                    found.setdefault((part[1], axis), name)
    for kind, frame in _UCD_FRAMES.items():
        if (kind, 'lon') in found and (kind, 'lat') in found:
            return found[kind, 'lon'], found[kind, 'lat'], frame
    return None


def _skycoord_column(table):
    """The name of the table's SkyCoord column (``sky_centroid`` first),
    else None."""
    from astropy.coordinates import SkyCoord

    names = [n for n in table.colnames if isinstance(table[n], SkyCoord)]
    return 'sky_centroid' if 'sky_centroid' in names else next(iter(names),
                                                                None)


def _sky_coords(table, label, source):
    """The SkyCoord of the sky columns ``source``: ``(lon, lat, frame)``,
    or ``(name, name, None)`` for a SkyCoord column (its own frame)."""
    from astropy.coordinates import SkyCoord, UnitSphericalRepresentation

    lon, lat, frame = source
    if frame is None:
        coords = table[lon]
        sph = coords.represent_as(UnitSphericalRepresentation)
        _as_float(Table({f'{lon} longitude': sph.lon.deg,
                         f'{lon} latitude': sph.lat.deg}),
                  (f'{lon} longitude', f'{lon} latitude'), label)
        return coords
    _as_float(table, (lon, lat), label)  # refuses blank cells
    latitude = _angle(table[lat], lat, label)
    beyond = np.abs(latitude.to_value(u.deg)) > 90
    if beyond.any():
        raise ValueError(f'{label}: column {lat} is beyond +-90 deg in '
                         f'row(s) {_row_list(beyond)} (rows counted from 1): '
                         'not a latitude (are the columns swapped?)')
    return SkyCoord(_angle(table[lon], lon, label), latitude, frame=frame)


def _describe(source, coords):
    """'galactic l/b' or 'galactic sky_centroid', for messages."""
    lon, lat, _ = source
    return f'{coords.frame.name} ' + (lon if lon == lat else f'{lon}/{lat}')


def _sky_to_pixel(table, label, wcs, source, unplaced=None):
    """x, y of sky positions; rows with no pixel position are refused, or,
    with a dict ``unplaced``, get NaN and are put there (``{row:
    SkyCoord}``)."""
    from astropy.coordinates.errors import ConvertError

    sky_wcs = celestial_wcs(wcs) if wcs is not None else None
    coords = _sky_coords(table, label, source)
    what = _describe(source, coords)
    if sky_wcs is None:
        raise NoWCSError(f'{label}: the table gives sky positions ({what}) '
                         'but no celestial WCS was given to convert them '
                         'to pixels (wcs=, or a frame with a WCS)')
    try:
        x, y = sky_wcs.world_to_pixel(coords)
    except (ConvertError, ValueError, TypeError) as exc:
        raise ValueError(f'{label}: {what} cannot be placed on the frame: '
                         f'{str(exc).splitlines()[0]}') from exc
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    lost = ~(np.isfinite(x) & np.isfinite(y))
    if lost.any() and unplaced is not None and not lost.all():
        x[lost] = y[lost] = np.nan
        unplaced.update({int(i): coords[i] for i in np.flatnonzero(lost)})
    elif lost.any():
        first = int(np.flatnonzero(lost)[0])
        raise ValueError(
            f'{label}: {what} of row(s) {_row_list(lost)} (the first: '
            f'{lonlat_text(coords[first])}) '
            'has no pixel position in the WCS (the far side of the sky for '
            'its projection); remove those rows or give the right table')
    return x, y, what, coords.frame.name


def _frame_shape(wcs):
    """The frame's (ny, nx) from ``wcs`` (a frame, or a WCS that knows its
    image size), else None."""
    shape = getattr(wcs, 'shape', None)
    if shape is None and getattr(wcs, 'data', None) is not None:
        shape = np.shape(wcs.data)
    if shape is None:
        shape = getattr(wcs, 'array_shape', None)
    return tuple(shape) if shape is not None and len(shape) == 2 else None


def _check_on_frame(x, y, shape, label, what):
    """Refuse positions none of which lies on a frame of ``shape`` (pixel
    ``i`` spans ``i - 0.5`` to ``i + 0.5``): an all-NaN table helps
    nobody."""
    ny, nx = shape
    on = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    if on.any():
        return
    placed = np.isfinite(x) & np.isfinite(y)  # (sky positions kept
    x, y = x[placed], y[placed]                # without a pixel one: NaN)
    raise OffFrameError(
        f'{label}: none of its {placed.size} positions ({what}) lies on the '
        f'{ny} x {nx} frame: they fall at x {np.min(x):.6g} to '
        f'{np.max(x):.6g}, y {np.min(y):.6g} to {np.max(y):.6g}; is this '
        "the frame's table, and are its columns (and their frame) right?")


def _row_list(rows):
    """Row numbers counted from 1, at most five, for a message."""
    index = np.flatnonzero(rows)
    text = ', '.join(str(i + 1) for i in index[:5])
    return text + (f' and {index.size - 5} more' if index.size > 5 else '')


#: the largest id kept exactly: int64, and 2**53 - 1 for ids stored as
#: floats (2**53 + 1 reads as 2**53)
_MAX_INT_ID, _MAX_FLOAT_ID = np.iinfo(np.int64).max, 2 ** 53 - 1


def inexact_ids(ids):
    """
    Which numeric ids cannot be kept exactly as 64-bit integers: floats
    that are not whole numbers of magnitude below 2**53, unsigned integers
    beyond int64 (an id of 1e20 would be written as -2**63).
    """
    ids = np.asarray(ids)
    if ids.dtype.kind == 'f':
        with np.errstate(invalid='ignore'):
            return (~np.isfinite(ids) | (ids != np.round(ids))
                    | (np.abs(ids) > _MAX_FLOAT_ID))
    if ids.dtype.kind == 'u':
        return ids > np.uint64(_MAX_INT_ID)
    return np.zeros(ids.shape, dtype=bool)


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
    if ids.dtype.kind in 'USO':
        # whole numbers the reader kept as text: beyond 64 bits
        text = np.char.strip(ids.astype(str))
        digits = np.array([t.lstrip('+-').isdigit() for t in text.flat])
        if digits.all():
            big = np.array([abs(int(t)) > _MAX_INT_ID for t in text.flat])
            if big.any():
                _refuse_big_ids(text.flat[int(np.flatnonzero(big)[0])], big,
                                _MAX_INT_ID, name, label, 'a 64-bit integer')
            ids = np.array([int(t) for t in text.flat], dtype=np.int64)
    if ids.dtype.kind not in 'iu' or len(np.unique(ids)) != len(ids):
        raise ValueError(f'{label}: the {name} column must hold unique '
                         'integers (the star ids)')
    if ids.dtype.kind == 'u':
        _ids_fit(ids, _MAX_INT_ID, name, label, 'a 64-bit integer')
    return ids.astype(np.int64), name


def _ids_fit(ids, limit, name, label, kind):
    """Refuse ids too large to be kept exactly (they would wrap around or
    lose digits), naming the rows."""
    big = inexact_ids(ids)
    if big.any():
        first = ids[np.flatnonzero(big)[0]]
        shown = f'{first:.17g}' if ids.dtype.kind == 'f' else f'{first}'
        _refuse_big_ids(shown, big, limit, name, label, kind)


def _refuse_big_ids(shown, big, limit, name, label, kind):
    """Refuse the ids flagged in ``big`` (the first shown as ``shown``)."""
    raise ValueError(f'{label}: column {name} holds ids too large to keep '
                     f'exactly ({shown}, row(s) {_row_list(big)}): at most '
                     f'{int(limit)} in magnitude as {kind}; renumber the '
                     'stars')


def _pixel_units(table, pair, label):
    """Refuse pixel columns that carry a unit other than pixels (an angle
    is a sky position, never a pixel)."""
    for name in pair:
        unit = getattr(table[name], 'unit', None)
        if unit is None or unit in (u.pix, u.dimensionless_unscaled):
            continue
        hint = (': give the sky columns and their frame (columns=, '
                'frame=) to convert them with the WCS'
                if unit.physical_type == 'angle' else '')
        raise ValueError(f'{label}: column {name} has unit {unit}, but '
                         f'pixel positions are in pixels{hint}')


def _pixels(table, label, wcs, columns, frame, unplaced=None):
    """x, y (0-based), what was read (for ``meta``: the columns, their
    origin, the frame of sky positions) and a description for messages
    (``unplaced``: as `_sky_to_pixel`'s)."""
    names = table.colnames
    if columns is not None:
        try:
            xname, yname = columns
        except (TypeError, ValueError):
            raise TypeError('columns must be a pair of column names '
                            '(x, y) or (longitude, latitude)') from None
        missing = [n for n in (xname, yname) if n not in names]
        if missing:
            raise ValueError(f'{label}: no column {missing[0]!r}; the table '
                             f'has {names}')
        sky = _find_pair((xname, yname), SKY_COLUMNS)
        ucd = _ucd_pair(table[[xname, yname]])
        unit = getattr(table[xname], 'unit', None)
        angular = unit is not None and unit.physical_type == 'angle'
        if frame is not None or sky is not None or ucd is not None or \
                angular:
            chosen = (frame if frame is not None
                      else (sky or ucd or (None, None, None))[2])
            if chosen is None:
                raise ValueError(
                    f'{label}: columns {xname}/{yname} are sky positions but '
                    'neither their names nor their UCDs say in which '
                    "celestial frame: give frame= (e.g. 'icrs', "
                    "'galactic')")
            return _sky_pixels(table, label, wcs, (xname, yname, chosen),
                               unplaced)
        known = {(x, y): o for x, y, o in PIXEL_COLUMNS}
        origin = known.get((xname, yname), 0)
        _pixel_units(table, (xname, yname), label)
        x, y = _as_float(table, (xname, yname), label)
        return x - origin, y - origin, {
            'x_column': xname, 'y_column': yname, 'origin': origin}, \
            f'{xname}/{yname}'
    pair = _find_pair(names, PIXEL_COLUMNS)
    if pair is not None:
        _pixel_units(table, pair[:2], label)
        x, y = _as_float(table, pair[:2], label)
        return x - pair[2], y - pair[2], {
            'x_column': pair[0], 'y_column': pair[1], 'origin': pair[2]}, \
            f'{pair[0]}/{pair[1]}'
    source = _sky_source(table, label, frame)
    if source is not None:
        return _sky_pixels(table, label, wcs, source, unplaced)
    raise ValueError(f'{label}: no position columns found among {names}; '
                     f'accepted: {_accepted_names()}' + (
                         '' if frame is None else
                         f', or {"/".join(_frame_names(frame))} for frame '
                         f'{_frame_name(frame)}'))


def _sky_source(table, label, frame):
    """``(lon, lat, frame)`` of the table's sky positions: recognised
    names, the components of ``frame``, position UCDs, a SkyCoord column
    (frame None: its own); None when there are none."""
    names = table.colnames
    pair = _find_pair(names, SKY_COLUMNS)
    if pair is None and frame is not None:
        own = _frame_names(frame)
        pair = _find_pair(names, [(*own, frame)])
    if pair is None:
        pair = _ucd_pair(table)
        if pair is not None and pair[2] is None and frame is None:
            raise ValueError(f'{label}: columns {pair[0]}/{pair[1]} are '
                             'ecliptic positions (their UCDs), in one of '
                             "several frames: give frame= (e.g. "
                             "'geocentricmeanecliptic')")
    if pair is not None:
        return (*pair[:2], pair[2] if frame is None else frame)
    column = _skycoord_column(table)
    if column is not None:
        if frame is not None:
            raise ValueError(f'{label}: column {column} is a SkyCoord and '
                             'keeps its own frame; frame= is for longitude '
                             'and latitude columns')
        return column, column, None
    return None


def _sky_pixels(table, label, wcs, source, unplaced):
    x, y, what, frame = _sky_to_pixel(table, label, wcs, source, unplaced)
    lon, lat, _ = source
    return x, y, {'x_column': lon, 'y_column': lat, 'origin': 'sky',
                  'frame': frame}, what


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


#: the spellings of a boolean cell read as True and as False (a CSV's
#: ``True``/``False``, or another plain spelling), compared in lower case
_TRUE_TEXT = frozenset({'true', 't', 'yes', 'y', '1'})
_FALSE_TEXT = frozenset({'false', 'f', 'no', 'n', '0'})


def boolean_column(column, name, label):
    """
    The cells of ``column`` as a boolean array: booleans, the integers 0
    and 1, or text spelling a boolean (``True``/``False`` as a CSV writes
    them, ``true``, ``T``, ``yes``, ``y``, ``1`` and their negatives, any
    case, spaces around ignored). Anything else, or a blank cell, is
    refused with a `ValueError` naming the column ``name`` of ``label``
    and the first rows it cannot read.
    """
    blank = _blank_rows(column)
    values = np.ma.getdata(np.asarray(getattr(column, 'value', column)))
    kind = values.dtype.kind
    if kind == 'b':
        out, bad = values.astype(bool), np.zeros(len(values), bool)
    elif kind in 'iu':
        out, bad = values == 1, ~np.isin(values, (0, 1))
    elif kind in 'US' or kind == 'O':
        text = np.char.lower(np.char.strip(values.astype(str)))
        out = np.isin(text, list(_TRUE_TEXT))
        bad = ~out & ~np.isin(text, list(_FALSE_TEXT))
    else:
        out, bad = np.zeros(len(values), bool), np.ones(len(values), bool)
    bad = bad | blank
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ', '.join(str(int(r) + 1) for r in rows[:5])
        more = f' and {len(rows) - 5} more' if len(rows) > 5 else ''
        cell = 'a blank' if blank[rows[0]] else repr(
            values[rows[0]].item() if hasattr(values[rows[0]], 'item')
            else values[rows[0]])
        raise ValueError(
            f'{label}: column {name} is not boolean (row(s) {shown}{more}; '
            f'row {int(rows[0]) + 1} holds {cell}): give True/False (or '
            f'true/false, yes/no, 1/0), or rename the column')
    return out


def _copy_star_like(table, out, label):
    """
    Copy the ``star_like`` and ``saturated`` columns of ``ccdphot find``
    output (the doubt of a detection not like a star,
    `~ccdphot_ext.star_like_flags`), read as booleans (`boolean_column`:
    a CSV's ``True``/``False`` included); a ``star_like`` column without
    ``saturated`` counts no detection as saturated. A column of either
    name that does not hold booleans is refused, naming it.
    """
    if 'star_like' not in table.colnames:
        return
    out['star_like'] = boolean_column(table['star_like'], 'star_like',
                                      label)
    out['saturated'] = (
        boolean_column(table['saturated'], 'saturated', label)
        if 'saturated' in table.colnames else np.zeros(len(table), bool))


def read_positions(positions, *, wcs=None, columns=None, format=None,
                   frame=None):
    """
    Star positions (0-based pixels) and ids from a table a user already has.

    Parameters
    ----------
    positions : str, path-like or `~astropy.table.Table`
        A table, or a file astropy can read: ECSV, CSV, FITS (a FITS_LDAC
        catalogue's ``LDAC_OBJECTS``), VOTable (``.xml``, ``.vot``), a
        Source Extractor ASCII_HEAD catalogue (``.cat``), an AstroImageJ
        measurement table (``.xls``, tab-separated), any other format
        astropy identifies, or any ASCII table astropy can guess.
    wcs : `~astropy.nddata.NDData` or WCS, optional
        The frame (its ``wcs`` and its size), or its celestial WCS: needed
        when the table gives sky positions. With the frame (or a WCS that
        knows the image size, as one read from a FITS header), a table none
        of whose positions lies on the frame is refused.
    columns : tuple of str, optional
        The ``(x, y)`` (0-based pixels) or ``(longitude, latitude)`` column
        names to use, overriding the recognised names below. Columns are
        sky positions when their names are recognised sky names, when they
        have position UCDs or an angle unit, or when ``frame`` is given.
    format : str, optional
        An astropy table format (e.g. ``'votable'``, ``'fits'``,
        ``'ascii.csv'``), overriding the guess from the file extension.
    frame : str or astropy frame, optional
        The celestial frame of the table's longitude and latitude columns
        (any frame astropy knows: ``'icrs'``, ``'fk5'``, ``'galactic'``,
        ``'supergalactic'``, ``'geocentricmeanecliptic'``, or an instance
        such as ``FK5(equinox='J1975')``), overriding the frame their names
        or UCDs imply. Without ``columns``, the frame's own component
        names are also looked for (``sgl``/``sgb`` for supergalactic). A
        `~astropy.coordinates.SkyCoord` column keeps its own frame.

    Returns
    -------
    table : `~astropy.table.QTable`
        Columns ``id``, ``x_center``, ``y_center`` (0-based pixels: the
        first pixel's centre is 0.0, as numpy and photutils), plus the
        suggested box columns ``box_x0``, ``box_x1``, ``box_y0``,
        ``box_y1`` and the boolean ``star_like`` and ``saturated`` columns
        when the input has them (``ccdphot find`` output; text such as a
        CSV's ``True``/``False`` is read as booleans, a table without
        ``saturated`` counts no row as saturated).
        ``meta`` records the source, the columns read and their origin
        (``'sky'`` for sky positions, with their ``'frame'``).

    Raises
    ------
    ValueError
        No recognised position columns (the message lists every accepted
        name), a blank/NaN coordinate (the message gives the row numbers),
        sky columns without a celestial WCS or whose frame is unknown,
        pixel columns with an angle unit, ids that are not unique integers,
        an empty table, no position on the frame, a ``star_like`` or
        ``saturated`` column that does not hold booleans.

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

    A galactic catalogue on an equatorial frame:

    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.wcs import WCS
    >>> wcs = WCS(naxis=2)
    >>> wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    >>> wcs.wcs.crval = [266.40, -28.94]
    >>> wcs.wcs.crpix = [50.0, 50.0]
    >>> wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
    >>> star = wcs.pixel_to_world(12.0, 30.0).galactic
    >>> cat = Table({'l': [star.l.deg], 'b': [star.b.deg]})
    >>> pos = read_positions(cat, wcs=wcs)
    >>> pos['x_center'].round(6).tolist(), pos['y_center'].round(6).tolist()
    ([12.0], [30.0])
    >>> pos.meta['frame']
    'galactic'
    """
    return positions_and_unplaced(positions, wcs=wcs, columns=columns,
                                  format=format, frame=frame,
                                  keep_unplaced=False)[0]


def positions_and_unplaced(positions, *, wcs, columns, format, frame,
                           keep_unplaced):
    """
    `read_positions`' table and ``{row: SkyCoord}`` of its sky positions
    with no pixel position in the WCS (the far side of the sky for its
    projection): with ``keep_unplaced`` these rows are kept, with NaN
    ``x_center`` and ``y_center``, else refused (an empty dict); a table
    of nothing else is refused either way.
    """
    unplaced = {} if keep_unplaced else None
    frame = check_frame(frame)
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
    x, y, read, what = _pixels(table, label, wcs, columns, frame, unplaced)
    shape = _frame_shape(wcs)
    if shape is not None:
        _check_on_frame(x, y, shape, label, what)
    ids, id_name = _ids(table, label)
    out = QTable({'id': ids, 'x_center': x, 'y_center': y})
    _copy_boxes(table, out, label)
    _copy_star_like(table, out, label)
    out.meta.update(
        positions_source=(os.path.abspath(os.fspath(positions))
                          if label != 'positions' else 'table'),
        **read, id_column=id_name)
    return out, unplaced or {}
