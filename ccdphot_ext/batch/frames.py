# Licensed under a 3-clause BSD style license - see LICENSE
"""
Light curves: the same apertures measured on many frames, serially or on a
Dask cluster.

`photometer_frames` reads each frame (a FITS path, or an in-memory
`~astropy.nddata.NDData`), estimates that frame's sky, optionally re-centres
every aperture on that frame (`recenter_positions`), runs `photometer` and
stacks the rows into one `~astropy.table.QTable` with the frame, the time of
the frame, the star ``id`` and every photometry column.

Faults never stop a run: a frame that cannot be read or measured gives rows
with ``status == 'failed'`` and the reason in ``error``, an entry in
``meta['failures']`` and one `~astropy.utils.exceptions.AstropyUserWarning`.
The output is written atomically
(`~ccdphot_ext.utils.write_table_atomic`), under a lock
that keeps a second run from writing the same file (`output_lock`), and
checkpointed, also on Ctrl-C and ``SIGTERM``, so that a stopped run resumes
where it stopped. On Dask each task carries what it needs; a worker that
dies costs at most a retry of its frames.

Time of a frame
    ``MJD-OBS`` if present, else ``DATE-OBS`` (ISO; a date-only
    ``DATE-OBS`` is completed by ``TIME-OBS``), in the scale named by
    ``TIMESYS`` (default UTC) and returned in UTC. It is the header's time
    (for most instruments the *start* of the exposure; the ``exptime``
    column lets you move to mid-exposure). A frame without either keyword
    gets a masked time, a warning and a ``note``.
"""

import math
import os
from contextlib import nullcontext

import numpy as np
from astropy.nddata import NDData
from astropy.utils.decorators import deprecated_renamed_argument

from ..aperture.utils import split_apertures
from ..background.sky import SKY_METHODS, SkyEstimate
from ..background.threshold import SigmaThreshold
from ..detection.recenter import RECENTER_METHODS, recenter_positions
from ..io.header import detector_parameters
from ..photometry.general import OVERLAP_METHODS
from ..photometry.terms import FRACTIONAL_VARIANCES, UNCERTAINTY_MODELS
from ..utils.files import check_output, table_format
from ..utils.inputs import positive_scalar
from .assembly import _frame_key, _frame_name
from .lock import output_lock
from .output import _parameters, frame_time
from .run import _Run
from .worker import AnnulusSky, _Config

__all__ = ['photometer_frames', 'AnnulusSky', 'frame_time']


@deprecated_renamed_argument('recenter_nsigma', 'recenter_n_sigma', '0.1')
def photometer_frames(frames, apertures, *, sky='sigma_clip', ids=None,
                      client=None, workers=None, scheduler=None,
                      recenter=False, recenter_box=11, recenter_n_sigma=2.0,
                      max_shift=None, resume_from=None, output=None,
                      checkpoint_interval=60.0, progress=None, hdu=None,
                      dask_timeout=60.0, **photometer_kwargs):
    """
    Photometry of the same apertures on many frames: one light-curve table.

    Parameters
    ----------
    frames : sequence of str, path-like or `~astropy.nddata.NDData`
        FITS paths (read with `~ccdphot_ext.read_frame`) or NDData frames.
    apertures : `BoxAperture`, `~photutils.aperture.PixelAperture` or list
        The nominal apertures, as for `photometer`.
    sky : {'sigma_clip', 'mean', 'median'}, `AnnulusSky` or callable, optional
        A `SkyEstimate.from_image` method measured on each frame, local
        annuli, or a module-level ``sky(ccd, apertures) -> SkyEstimate``.
    ids : sequence of int, optional
        Star ids, one per position; default 1..N.
    client, workers, scheduler : optional
        A `distributed.Client`, a number of local worker processes or a
        scheduler address; without them, serially here (:ref:`batch-dask`).
    recenter, recenter_box, recenter_n_sigma, max_shift : optional
        Re-centre each aperture on each frame (True, ``'com'`` or ``'2dg'``)
        with `recenter_positions`' ``box_size``, ``n_sigma``, ``max_shift``
        (:ref:`batch-each-frame`; ``recenter_nsigma`` is deprecated).
    output, checkpoint_interval, resume_from : optional
        Also write the table here (ECSV, atomically, locked), every
        ``checkpoint_interval`` seconds (60) and on an interrupt; resume
        from a previous output (:ref:`batch-output`).
    progress : bool, optional
        A progress line on stderr every ~10% (default: over 20 frames).
    hdu : int or str, optional
        The image HDU of FITS frames (default the first with data).
    dask_timeout : float, optional
        Seconds to wait for the scheduler or a worker (default 60).
    **photometer_kwargs
        For `photometer` (``gain``, ``exptime``, ...; else each header's).

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per frame and position: ``frame``, ``time`` (UTC), ``id``,
        every `photometer` column, ``exptime``, ``status``, ``error`` and
        ``note``; ``meta`` holds the parameters and ``failures`` (a failed
        frame also warns: :ref:`batch-faults`).

    Raises
    ------
    ValueError, TypeError, `~ccdphot_ext.batch.OutputLockedError`
        A bad argument (before any frame is measured); another run writing
        ``output``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import NDData
    >>> from ccdphot_ext import BoxAperture, photometer_frames
    >>> rng, star = np.random.default_rng(0), np.zeros((40, 40))
    >>> star[18:21, 18:21] = 200.0
    >>> frames = [NDData(rng.normal(100.0, 3.0, (40, 40)) + k * star,
    ...                  meta={'MJD-OBS': 6e4 + k, 'FILENAME': f'f{k}.fits'})
    ...           for k in (1, 2, 3)]
    >>> lc = photometer_frames(frames, BoxAperture((19, 19), 9, 9), gain=2.0)
    >>> lc['frame'].tolist(), np.round(lc['aperture_sum'] / 1800.0).tolist()
    (['f1.fits', 'f2.fits', 'f3.fits'], [1.0, 2.0, 3.0])
    """
    frames, names = _check_frames(frames)
    config, ids = _configure(apertures, sky, ids, recenter, hdu, {
        'box_size': recenter_box, 'n_sigma': recenter_n_sigma,
        'max_shift': max_shift}, photometer_kwargs)
    checkpoint_interval, dask_timeout = _check_run_options(
        frames, output, checkpoint_interval, progress, dask_timeout)
    run = _Run(frames, names, config, ids, _parameters(config, ids, sky),
               output=output, checkpoint_interval=checkpoint_interval,
               progress=progress)
    with nullcontext() if output is None else output_lock(output):
        run.resume(resume_from)
        return run.execute(client, workers, scheduler, dask_timeout)


def _check_run_options(frames, output, checkpoint_interval, progress,
                       dask_timeout):
    """The run's options checked: the two intervals as floats."""
    checkpoint_interval = positive_scalar(checkpoint_interval,
                                          'checkpoint_interval',
                                          allow_none=False)
    dask_timeout = positive_scalar(dask_timeout, 'dask_timeout',
                                   allow_none=False)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f'progress must be True, False or None, got '
                        f'{progress!r}')
    if output is not None:
        _check_batch_output(output, frames)
    return checkpoint_interval, dask_timeout


def _check_frames(frames):
    """The frames as a list, and their names (each listed once)."""
    if isinstance(frames, (str, os.PathLike, NDData)):
        frames = [frames]
    frames = list(frames)
    if not frames:
        raise ValueError('frames is empty')
    for f in frames:
        if not isinstance(f, (str, os.PathLike, NDData)):
            raise TypeError('frames must be FITS paths or NDData objects, got '
                            f'{type(f).__name__}')
    names = [_frame_name(f, i) for i, f in enumerate(frames)]
    seen = {}
    for i, name in enumerate(names):
        j = seen.setdefault(_frame_key(name), i)
        if j != i:
            raise ValueError(f'frames: {name} is listed twice (positions {j} '
                             f'and {i}); each frame may appear once')
    return frames, names


def _check_batch_output(output, frames):
    """Refuse an output that is a frame or not an ECSV name, before work."""
    check_output(output, label='output', inputs=[
        (f, 'frame') for f in frames if not isinstance(f, NDData)])
    if table_format(output) != 'ascii.ecsv':
        raise ValueError(f'output {os.fspath(output)}: a batch writes ECSV '
                         '(resume reads it back); give a name ending in '
                         '.ecsv')


def _configure(apertures, sky, ids, recenter, hdu, recenter_kwargs,
               photometer_kwargs):
    """Validate everything a worker will use; return (config, ids)."""
    pairs = split_apertures(apertures)
    if isinstance(apertures, tuple):
        apertures = list(apertures)
    if not (callable(sky) or sky in SKY_METHODS):
        raise ValueError(f'sky must be one of {SKY_METHODS} or a callable '
                         f'sky(ccd, apertures), got {sky!r}')
    ids = np.arange(1, len(pairs) + 1) if ids is None else np.asarray(ids)
    if ids.shape != (len(pairs),):
        raise ValueError(f'ids has shape {ids.shape}; give one id per '
                         f'aperture position ({len(pairs)})')
    if len(set(ids.tolist())) != len(ids):
        raise ValueError('ids must be unique')
    recenter = _check_recenter(recenter, recenter_kwargs)
    allowed = {'gain', 'threshold', 'saturation', 'method', 'subpixels',
               'read_noise', 'uncertainty_model', 'include_sky_mean',
               'exptime', 'zeropoint', 'fractional_variance'}
    unknown = sorted(set(photometer_kwargs) - allowed)
    if unknown:
        raise TypeError(f'photometer_frames got unexpected keyword(s) '
                        f'{", ".join(unknown)}')
    _validate_photometer_kwargs(photometer_kwargs)
    config = _Config(apertures=apertures, sky=sky, recenter=recenter,
                     recenter_kwargs=recenter_kwargs if recenter else {},
                     photometer_kwargs=dict(photometer_kwargs), hdu=hdu,
                     n_rows=len(pairs))
    return config, ids


def _check_recenter(recenter, recenter_kwargs):
    if recenter is True:
        recenter = 'com'
    if recenter is False or recenter is None:
        return None
    if recenter not in RECENTER_METHODS:
        raise ValueError(f'recenter must be True, False or one of '
                         f'{RECENTER_METHODS}, got {recenter!r}')
    # validate now, not once per frame on the workers
    recenter_positions(np.zeros((3, 3)), np.empty((0, 2)),
                       SkyEstimate(0.0, 1.0, 1), method=recenter,
                       **recenter_kwargs)
    return recenter


def _validate_photometer_kwargs(kwargs):
    """Fail early on the client, naming the parameter."""
    detector_parameters(None, **{k: kwargs[k] for k in
                                 ('gain', 'read_noise', 'exptime',
                                  'saturation') if kwargs.get(k) is not None})
    threshold = kwargs.get('threshold')
    if threshold is not None and not isinstance(threshold, SigmaThreshold):
        raise TypeError('threshold must be a SigmaThreshold or None, got '
                        f'{type(threshold).__name__}')
    if kwargs.get('method', 'exact') not in OVERLAP_METHODS:
        raise ValueError(f'method must be one of {OVERLAP_METHODS}, '
                         f"got {kwargs['method']!r}")
    if kwargs.get('uncertainty_model', 'background') not in UNCERTAINTY_MODELS:
        raise ValueError(f'uncertainty_model must be one of '
                         f"{UNCERTAINTY_MODELS}, got "
                         f"{kwargs['uncertainty_model']!r}")
    fractional = kwargs.get('fractional_variance', 'squared')
    if fractional not in FRACTIONAL_VARIANCES:
        raise ValueError(f'fractional_variance must be one of '
                         f'{FRACTIONAL_VARIANCES}, got {fractional!r}')
    zp = kwargs.get('zeropoint')
    if zp is not None and not (isinstance(zp, (int, float, np.number))
                               and math.isfinite(zp)):
        raise ValueError(f'zeropoint must be a finite number, got {zp!r}')


