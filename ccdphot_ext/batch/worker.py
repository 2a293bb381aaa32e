# Licensed under a 3-clause BSD style license - see LICENSE
"""
One frame of a batch: what a worker does with a frame path or an
in-memory frame, with the run's configuration: read it, take its time from
the header (`frame_time`), estimate its sky (a method name, `AnnulusSky` or
a callable), optionally re-centre the apertures, and run `photometer`.
Never raises: a failure is returned as a result with ``status == 'failed'``
and the reason.

Time of a frame
    ``MJD-OBS`` if present, else ``DATE-OBS`` (ISO; a date-only
    ``DATE-OBS`` is completed by ``TIME-OBS``), in the scale named by
    ``TIMESYS`` (default UTC) and returned in UTC. It is the header's time
    (for most instruments the *start* of the exposure; the ``exptime``
    column lets you move to mid-exposure). A frame without either keyword,
    or whose keyword is not a time of the years 1000 to 2999 (seconds, or a
    Julian date given as ``MJD-OBS``), gets a masked time, a warning and a
    ``note`` naming the keyword: a bad time costs the time, never the
    photometry.
"""

import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData
from astropy.time import Time
from astropy.utils.exceptions import AstropyUserWarning

from ..background.methods import SKY_METHODS
from ..io.fitsfile import frame_size
from ..io.header import DetectorParameters
from ..photometry.terms import BudgetOptions
from ..utils.columns import PHOTOMETRY_COLUMNS
from ..utils.files import is_stream
from ..utils.inputs import as_frame, positive_scalar
from ..utils.numbers import check_choice
from .layout import ApertureLayout
from .reading import FrameReading

if TYPE_CHECKING:
    from ..detection.recenter import Recentering

__all__ = ['AnnulusSky', 'frame_time']

STATUS_OK, STATUS_FAILED = 'ok', 'failed'

#: frame times are plausible from the year 1000 to the year 2999 (the JDs
#: of 1000-01-01 and 3000-01-01)
_JD_RANGE = (2086307.5, 2816787.5)


def plausible_jd(jd):
    """True where ``jd`` (a Julian date, array-like) is a plausible frame
    time: finite, from the year 1000 to the year 2999."""
    jd = np.asarray(jd, dtype=float)
    with np.errstate(invalid='ignore'):
        return np.isfinite(jd) & (jd >= _JD_RANGE[0]) & (jd < _JD_RANGE[1])


@dataclass(frozen=True)
class FrameConfig:
    """Everything a worker needs, besides the frame (picklable): how to
    read it, the apertures (their layout: circles and boxes travel as
    their sizes and positions, built where they are measured), the sky
    and re-centring of every frame, and `photometer`'s options
    (``detector`` holds the run's gain; each frame's header completes
    it). ``row_flags``, one int per row (or empty: none), are ORed into
    every frame's ``flags``: the flags the positions table gives its rows,
    as ``ccdphot measure`` gives them. The measuring modules (photutils'
    included) are imported where a frame is measured, not where the run
    only collects results."""

    layout: ApertureLayout
    sky: object
    recenter: 'Recentering | None'
    detector: DetectorParameters
    budget: BudgetOptions
    threshold: object = None
    zeropoint: float | None = None
    flux_unit: object = None
    reading: FrameReading = field(default_factory=FrameReading)
    row_flags: tuple = ()
    n_rows: int = 0
    columns: tuple = field(default=PHOTOMETRY_COLUMNS)
    sky_without_apertures: bool = True
    #: seconds a frame may take (None: no limit): `measure_frame` fails a
    #: frame that takes longer (`BatchExecution.frame_timeout`); not a
    #: run parameter (a resumed run may change it)
    frame_timeout: float | None = None


@dataclass
class FrameResult:
    """
    What one frame gave: its numbers, or why it failed (picklable: Dask
    workers send it back).

    Attributes
    ----------
    status : {'ok', 'failed'}
    error : str
        Why the frame failed (``''`` when it did not).
    notes : list of str
        Remarks on the frame (a masked time, apertures not re-centred).
    time : tuple of float or None
        The header time as (jd1, jd2) in UTC; None when unknown.
    columns : dict or None
        `photometer`'s columns as plain arrays, one row per aperture (a sky
        position as (n, 2) ICRS degrees); None for a failed frame.
    unit : str or None
        The unit of the data (and of the flux columns).
    exptime : float
        Exposure time in seconds (NaN when unknown).
    positions : `~numpy.ndarray` or None
        The nominal (x, y) positions when the apertures were re-centred.
    warnings : list of str
        The distinct warnings measuring the frame raised.
    worker : str or None
        The address of the Dask worker that measured it.
    fingerprint : tuple of int or None
        The size and modification time (ns) of the frame's file when it was
        read (None for an in-memory frame): a resumed run measures a frame
        again when its file has changed since.
    text : dict or None
        The output's text of the frame's rows, made where the frame was
        measured (``frames_text`` of `ccdphot_ext.batch.frames`; the text
        of the other frames of its Dask task too, made with it); None when
        not made there.
    """

    status: str = STATUS_OK
    error: str = ''
    notes: list = field(default_factory=list)
    time: tuple | None = None
    columns: dict | None = None
    unit: str | None = None
    exptime: float = math.nan
    positions: np.ndarray | None = None
    warnings: list = field(default_factory=list)
    worker: str | None = None
    fingerprint: tuple | None = None
    text: dict | None = None

    @classmethod
    def failed(cls, error, **kwargs):
        """A failed frame's result: the reason, no numbers."""
        return cls(status=STATUS_FAILED, error=error, **kwargs)

    def fail(self, error):
        """Mark a measured frame failed: its numbers go, its time and
        notes stay."""
        self.status, self.error = STATUS_FAILED, error
        self.columns = self.unit = self.positions = None
        self.exptime = math.nan


class AnnulusSky:
    """
    A local sky for `photometer_frames`: one circular annulus per aperture.

    Called as ``sky(ccd, apertures)`` on every frame, it measures
    `SkyEstimate.from_annulus <ccdphot_ext.SkyEstimate.from_annulus>` in
    annuli of radii ``r_in``, ``r_out`` centred on the apertures (after
    re-centring, when that is on), the apertures' own pixels left out.

    Parameters
    ----------
    r_in : float
        The inner radius in pixels (positive, as a photutils
        `~photutils.aperture.CircularAnnulus`).
    r_out : float
        The outer radius in pixels (greater than ``r_in``).
    method : {'sigma_clip', 'mean', 'median'}, optional
        The estimator in each annulus (default ``'sigma_clip'``).

    Raises
    ------
    ValueError
        If a radius is not positive and finite, ``r_out`` does not exceed
        ``r_in``, or ``method`` is not one of its choices.

    Examples
    --------
    >>> from ccdphot_ext.batch import AnnulusSky
    >>> AnnulusSky(8, 14)
    AnnulusSky(r_in=8.0, r_out=14.0, method='sigma_clip')
    """

    def __init__(self, r_in, r_out, *, method='sigma_clip'):
        self.r_in = positive_scalar(r_in, 'r_in', allow_none=False)
        self.r_out = positive_scalar(r_out, 'r_out', allow_none=False)
        if self.r_out <= self.r_in:
            raise ValueError(f'r_out ({self.r_out}) must exceed r_in '
                             f'({self.r_in})')
        self.method = check_choice(method, 'method', SKY_METHODS)

    def check_extent(self, shape):
        """
        Refuse annuli far larger than a frame, before any frame is measured.

        Each such annulus's masks would exhaust the memory.

        Parameters
        ----------
        shape : tuple of int
            The frame's ``(ny, nx)`` in pixels.

        Raises
        ------
        ValueError
            If an annulus's bounding box spans far more than the frame
            (naming ``r_out``).
        """
        from photutils.aperture import CircularAnnulus

        from ..aperture.utils import check_extent

        check_extent(CircularAnnulus((0.0, 0.0), self.r_in, self.r_out),
                     shape, 'sky annulus', hint='r_out')

    def __call__(self, ccd, apertures, *, detector=None):
        """
        Measure the annuli of one frame.

        Parameters
        ----------
        ccd : `~astropy.nddata.NDData` or array_like
            The frame.
        apertures : photutils aperture or list
            The apertures: the annuli's centres, and pixels left out of
            every annulus.
        detector : `~ccdphot_ext.DetectorParameters`, optional
            The run's detector values; the gain, resolved against the
            frame's header (GAIN/EGAIN/CCDGAIN) in electrons per data unit,
            removes the estimator's bias on a Poisson sky
            (`SkyEstimate.from_annulus <ccdphot_ext.SkyEstimate.from_annulus>`
            ``gain=``). None (default): the header's gain alone.

        Returns
        -------
        sky : `~ccdphot_ext.SkyEstimate`
            One level per aperture.
        """
        from photutils.aperture import CircularAnnulus

        from ..aperture.utils import all_positions
        from ..background.sky import SkyEstimate

        frame = as_frame(ccd)
        gain = sky_gain(frame, detector)
        annulus = CircularAnnulus(all_positions(apertures), self.r_in,
                                  self.r_out)
        return SkyEstimate.from_annulus(frame, annulus, method=self.method,
                                        exclude=apertures, gain=gain)

    def __repr__(self):
        return (f'AnnulusSky(r_in={self.r_in}, r_out={self.r_out}, '
                f'method={self.method!r})')


def sky_gain(frame, detector=None):
    """
    The gain of a sky estimate: the run's ``detector`` resolved against the
    frame's header, in electrons per data unit (None where neither gives
    one), so that a median or clipped-mean level loses its bias on a
    Poisson sky (:ref:`sky-estimators`) as the photometry's budget uses
    the same gain.

    Parameters
    ----------
    frame : `~astropy.nddata.NDData`
        The checked frame (its ``meta`` and ``unit``).
    detector : `~ccdphot_ext.DetectorParameters`, optional
        The run's detector values; None (default): the header's alone.

    Returns
    -------
    gain : float or None
        Electrons per data unit.
    """
    detector = DetectorParameters() if detector is None else detector
    return detector.resolve(frame.meta, unit=frame.unit).gain


def whole_frame_sky(frame, method, detector=None):
    """
    The whole-frame sky of a run (`SkyEstimate.from_image
    <ccdphot_ext.SkyEstimate.from_image>`), with the gain of `sky_gain`.

    Parameters
    ----------
    frame : `~astropy.nddata.NDData`
        The checked frame.
    method : {'sigma_clip', 'mean', 'median'}
        The estimator.
    detector : `~ccdphot_ext.DetectorParameters`, optional
        The run's detector values; None (default): the header's alone.

    Returns
    -------
    sky : `~ccdphot_ext.SkyEstimate`
        The frame's level.
    """
    from ..background.sky import SkyEstimate

    return SkyEstimate.from_image(frame, method=method,
                                  gain=sky_gain(frame, detector))


def _make_sky(spec, ccd, frame, apertures, detector):
    """
    The sky of one frame: a `SkyEstimate.from_image` method or `AnnulusSky`
    (with the run's ``detector``, for the gain) on the checked ``frame``,
    any other callable on ``ccd`` as read (the documented ``sky(ccd,
    apertures)``).
    """
    from ..background.sky import SkyEstimate

    if not callable(spec):
        return whole_frame_sky(frame, spec, detector)
    sky = (spec(frame, apertures, detector=detector)
           if isinstance(spec, AnnulusSky) else spec(ccd, apertures))
    if not isinstance(sky, SkyEstimate):
        raise TypeError('the sky callable must return a SkyEstimate, '
                        f'got {type(sky).__name__}')
    return sky


def measure_frame(frame, config):
    """
    Measure one frame; never raises (a failure is returned).

    A frame that is a pipe or a device, not a file, fails at once (a
    named pipe no one writes to would never finish reading). With
    ``config.frame_timeout``, the frame is measured in a thread of its
    own, and fails when it takes longer (a file that never finishes
    reading: a hung network disk): the run goes on without it, and the
    thread, which cannot be stopped, is left to end when it can.
    """
    if not isinstance(frame, NDData) and is_stream(frame):
        return FrameResult.failed(
            f'{os.fspath(frame)}: a pipe or a device, not a file: a batch '
            'reads each frame from a file (its size and time identify it '
            'for a resumed run)')
    limit = config.frame_timeout
    if limit is None:
        return _measure_frame(frame, config)
    box = []

    def run():
        try:
            box.append(_measure_frame(frame, config))
        except BaseException as exc:  # an interrupt: raised by the caller
            box.append(exc)

    thread = threading.Thread(target=run, name='ccdphot-frame', daemon=True)
    thread.start()
    thread.join(limit)
    if box and isinstance(box[0], BaseException):
        raise box[0]
    if thread.is_alive() or not box:
        return FrameResult.failed(
            f'TimeoutError: not measured within {limit:g} s (frame_timeout;'
            ' --frame-timeout): a file that never finishes reading (a hung '
            'network disk) or a frame far larger than the others')
    return box[0]


def _measure_frame(frame, config):
    """`measure_frame` in this thread."""
    notes, when, error = [], None, None
    fingerprint = None if isinstance(frame, NDData) else file_fingerprint(
        frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            ccd = (frame if isinstance(frame, NDData)
                   else config.reading.read(frame))
            when = _header_time(ccd, frame, notes)
            table, nominal = _photometer_frame(ccd, config, notes)
            column = table['aperture_sum']
            unit = getattr(column, 'unit', None)
            exptime = table.meta.get('exptime')
            measured = {
                'columns': _plain_columns(table),
                'unit': None if unit is None else unit.to_string(),
                'exptime': math.nan if exptime is None else float(exptime),
                'positions': nominal}
        except MemoryError:
            error = _out_of_memory(frame, config.reading.hdu)
        except Exception as exc:  # one bad frame never stops the run
            text = ' '.join(str(exc).split())
            error = f'{type(exc).__name__}: {text}'
    seen = list(dict.fromkeys(
        str(w.message) for w in caught
        if issubclass(w.category, (UserWarning, RuntimeWarning))))
    if error is not None:
        return FrameResult.failed(error, notes=notes, time=when,
                                  warnings=seen, fingerprint=fingerprint)
    return FrameResult(notes=notes, time=when, warnings=seen,
                       fingerprint=fingerprint, **measured)


def file_fingerprint(path):
    """``(size, modification time in ns)`` of the file ``path`` (links
    followed), or None when it cannot be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError, TypeError):
        return None
    return (int(st.st_size), int(st.st_mtime_ns))


def _photometer_frame(ccd, config, notes):
    """
    `photometer`'s table for one frame, and the nominal positions when the
    apertures were re-centred (else None). The frame is converted and
    checked once (`as_frame`), for the sky, the re-centring and the sums.
    """
    # imported where the frames are measured: the client of a Dask run,
    # which only collects, never loads the photometer
    from ..aperture.utils import with_positions
    from ..photometry.table import photometer

    frame = as_frame(ccd)
    apertures, nominal = config.layout.apertures, None
    sky = _make_sky(config.sky, ccd, frame, apertures, config.detector)
    if config.recenter is not None:
        nominal = config.layout.positions.copy()
        new, ok = config.recenter(frame, nominal, sky)
        apertures = with_positions(apertures, new)
        if not ok.all():
            notes.append(f'{int((~ok).sum())} aperture(s) not re-centred '
                         '(kept nominal)')
        if callable(config.sky):
            sky = _make_sky(config.sky, ccd, frame, apertures,
                            config.detector)
    table = photometer(frame, apertures, sky, threshold=config.threshold,
                       detector=config.detector, budget=config.budget,
                       zeropoint=config.zeropoint,
                       flux_unit=config.flux_unit,
                       sky_without_apertures=config.sky_without_apertures)
    if len(table) != config.n_rows:
        raise ValueError(f'{len(table)} rows measured, not one row per '
                         f'aperture ({config.n_rows})')
    if config.row_flags:
        table['flags'] |= np.asarray(config.row_flags,
                                     dtype=table['flags'].dtype)
    return table, nominal


def _plain_columns(table):
    """Columns as plain arrays; a sky position as (n, 2) ICRS degrees."""
    columns = {}
    for name in table.colnames:
        col = table[name]
        if isinstance(col, SkyCoord):
            icrs = col.icrs
            columns[name] = np.column_stack([icrs.ra.deg, icrs.dec.deg])
        else:
            columns[name] = np.asarray(getattr(col, 'value', col))
    return columns


def _out_of_memory(frame, hdu):
    if isinstance(frame, NDData):
        size = f'{np.asarray(frame.data).nbytes / 2**20:.1f} MiB of data'
    else:
        size = frame_size(frame, hdu=hdu) or 'size unknown'
    return f'MemoryError: out of memory measuring this frame ({size})'


def frame_time(header):
    """
    The time of a frame from its header, in UTC.

    Parameters
    ----------
    header : dict-like
        A FITS header (or ``NDData.meta``).

    Returns
    -------
    time : `~astropy.time.Time` or None
        None when the header has neither ``MJD-OBS`` nor ``DATE-OBS``.
    source : str
        The keyword used, or ``'missing'``.

    Raises
    ------
    ValueError
        If the keyword holds something that is not a time of the years 1000
        to 2999 (the message names the keyword and its value).

    Examples
    --------
    >>> from ccdphot_ext.batch import frame_time
    >>> t, key = frame_time({'DATE-OBS': '2023-11-24T03:14:15'})
    >>> t.isot, key
    ('2023-11-24T03:14:15.000', 'DATE-OBS')
    >>> float(frame_time({"MJD-OBS": 60272.5})[0].mjd)
    60272.5
    """
    header = {} if header is None else header
    scale = str(header.get('TIMESYS', 'UTC')).strip().lower() or 'utc'
    if scale not in Time.SCALES:
        raise ValueError(f'TIMESYS={scale!r} is not a time scale')
    if 'MJD-OBS' in header:
        raw = header['MJD-OBS']
        try:
            if isinstance(raw, (bool, np.bool_)):
                raise TypeError('a logical value')
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f'MJD-OBS={raw!r} is not a number') from None
        if not math.isfinite(value):
            raise ValueError(f'MJD-OBS={raw!r} is not finite')
        if not plausible_jd(value + 2400000.5):
            raise ValueError(f'MJD-OBS={raw!r} is not a time of the years '
                             '1000 to 2999 (seconds, or a Julian date, '
                             'instead of a modified Julian date?)')
        return _in_utc(Time(value, format='mjd', scale=scale), 'MJD-OBS',
                       raw), 'MJD-OBS'
    if 'DATE-OBS' in header:
        raw = str(header['DATE-OBS']).strip()
        if 'T' not in raw and 'TIME-OBS' in header:
            raw = f"{raw}T{str(header['TIME-OBS']).strip()}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')  # ERFA's, said if the time holds
            try:
                t = Time(raw, format='isot', scale=scale)
            except ValueError:
                try:
                    t = Time(raw, scale=scale)
                except ValueError:
                    raise ValueError(f'DATE-OBS={raw!r} is not an ISO '
                                     'time') from None
        if not t.isscalar or not plausible_jd(t.jd):
            raise ValueError(f'DATE-OBS={raw!r} is not a time of the years '
                             '1000 to 2999')
        for w in caught:
            warnings.warn(w.message, w.category, stacklevel=2)
        return _in_utc(t, 'DATE-OBS', raw), 'DATE-OBS'
    return None, 'missing'


def _in_utc(t, key, raw):
    """``t`` in UTC, an ERFA failure named by the keyword."""
    try:
        return t.utc
    except ValueError as exc:  # ErfaError
        raise ValueError(f'{key}={raw!r} cannot be converted to UTC '
                         f'({exc})') from None


def _header_time(ccd, frame, notes):
    """(jd1, jd2) of the frame, or None with a note and a warning."""
    try:
        t, _ = frame_time(ccd.meta)
        if t is None and not isinstance(frame, NDData):
            # multi-extension files often keep the time in the primary
            t, _ = frame_time(_primary_header(frame))
        problem = 'no MJD-OBS or DATE-OBS'
    except ValueError as exc:  # a bad time never loses the photometry
        t, problem = None, f'unreadable time ({exc})'
    if t is None:
        notes.append(f'{problem}: time masked')
        warnings.warn(f'{problem} in the header; time masked',
                      AstropyUserWarning, stacklevel=3)
        return None
    return float(t.jd1), float(t.jd2)


def _primary_header(path):
    """The primary header of ``path`` ({} when it cannot be read again, as
    a pipe)."""
    try:
        return fits.getheader(path, 0)
    except (OSError, ValueError, KeyError, IndexError):
        return {}
