# Licensed under a 3-clause BSD style license - see LICENSE
"""
Many stars at once: one `~astropy.table.QTable` row per aperture.
"""

import math

import astropy
import numpy as np
import photutils
from astropy.table import QTable
from photutils.aperture import PixelAperture

from ._inputs import as_frame, positive_scalar
from .aperture import BoxAperture
from .header import detector_parameters
from .measure import _check_common, _measure_one, _n_positions, _position
from .sky import SkyEstimate

__all__ = ['photometer', 'PHOTOMETRY_COLUMNS']

#: Columns every `photometer` table has, in order.
PHOTOMETRY_COLUMNS = ('id', 'x_center', 'y_center', 'n_pix', 'sky',
                      'sky_std', 'sky_error_on_mean', 'aperture_sum',
                      'aperture_sum_err', 'var_sky', 'var_source',
                      'var_sky_mean', 'snr', 'mag', 'mag_err', 'flags')


def _split_apertures(apertures):
    """Return a list of (aperture, index) pairs, one per position."""
    if isinstance(apertures, (BoxAperture, PixelAperture)):
        return [(apertures, i) for i in range(_n_positions(apertures))]
    if isinstance(apertures, (list, tuple)):
        if not apertures:
            raise ValueError('apertures is empty')
        out = []
        for ap in apertures:
            if not isinstance(ap, (BoxAperture, PixelAperture)):
                raise TypeError('apertures must be BoxAperture or photutils '
                                'PixelAperture objects, got '
                                f'{type(ap).__name__}')
            out.extend((ap, i) for i in range(_n_positions(ap)))
        return out
    raise TypeError('apertures must be a BoxAperture, a photutils '
                    'PixelAperture or a list of them, got '
                    f'{type(apertures).__name__}')


def instrumental_mag(flux, *, exptime=None, zeropoint=None):
    """
    ``-2.5 log10(flux / exptime) + zeropoint``; NaN where flux <= 0.

    Without ``exptime`` the flux is used as it is; without ``zeropoint`` the
    zero point is 0 (instrumental magnitudes).
    """
    flux = np.asarray(flux, dtype=float)
    rate = flux / exptime if exptime else flux
    out = np.full(flux.shape, np.nan)
    good = rate > 0
    out[good] = -2.5 * np.log10(rate[good])
    if zeropoint is not None:
        out = out + zeropoint
    return out


def photometer(data, apertures, sky, *, gain=None, threshold=None,
               saturation=None, method='exact', subpixels=5,
               uncertainty=None, mask=None, read_noise=None,
               uncertainty_model='background', include_sky_mean=True,
               exptime=None, zeropoint=None):
    """
    Aperture photometry of many stars, with the full budget per row.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame; a `CCDData`'s uncertainty, mask, unit and header
        are used.
    apertures : `BoxAperture`, `~photutils.aperture.PixelAperture` or list
        One row per position, in order.
    sky : `SkyEstimate`
        Global (one level) or per aperture (one level per row).
    gain : float, optional
        e-/ADU; default from the header (GAIN/EGAIN/CCDGAIN), else the source
        term is absent (``var_source`` is NaN and ``meta`` says so).
    threshold : `SigmaThreshold`, optional
        Keep only the pixels above ``n_sigma * sky_std`` in each aperture.
    saturation : float, optional
        Saturation level; default the header's SATURATE/SATLEVEL.
    method, subpixels : optional
        Overlap method for photutils apertures (passed through).
    uncertainty, mask : optional
        Per-pixel 1-sigma map and bad-pixel mask (as in `measure`).
    read_noise : float, optional
        e-, for the sky-variance decomposition.
    uncertainty_model : {'background', 'total'}, optional
        How an uncertainty map enters the budget (see `measure`).
    include_sky_mean : bool, optional
        Keep the error of the sky level in the budget (default True).
    exptime : float, optional
        Seconds; default the header's EXPTIME. Magnitudes are
        ``-2.5 log10(flux / exptime) + zeropoint``.
    zeropoint : float, optional
        Magnitude zero point (default 0: instrumental magnitudes).

    Returns
    -------
    table : `~astropy.table.QTable`
        Columns `PHOTOMETRY_COLUMNS` (fluxes in the data unit), ``meta``
        with versions and parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture, SkyEstimate, photometer
    >>> img = np.random.default_rng(1).normal(100, 4, (64, 64))
    >>> img[10:13, 10:13] += 300
    >>> boxes = BoxAperture([(11, 11), (40, 40)], 7, 7)
    >>> t = photometer(img, boxes, SkyEstimate.from_image(img), gain=2.0)
    >>> t['id'].tolist(), t['flags'].tolist()
    ([1, 2], [0, 0])
    """
    pairs = _split_apertures(apertures)
    for ap, _ in pairs[:1]:
        _check_common(ap, sky, threshold, uncertainty_model)
    frame = as_frame(data, uncertainty=uncertainty, mask=mask)
    params = detector_parameters(frame.meta, gain=gain, saturation=saturation,
                                 read_noise=read_noise, exptime=exptime)
    if not isinstance(sky, SkyEstimate):  # pragma: no cover - checked above
        raise TypeError('sky must be a SkyEstimate')
    if not sky.isscalar and len(sky) != len(pairs):
        raise ValueError(f'sky has {len(sky)} levels for {len(pairs)} '
                         'apertures; give one level or one per aperture')
    subpixels = int(positive_scalar(subpixels, 'subpixels', allow_none=False))
    gain_value = params['gain']
    rows = []
    for row_index, (ap, index) in enumerate(pairs):
        res = _measure_one(
            frame, ap, index, sky,
            sky_index=0 if sky.isscalar else row_index, gain=gain_value,
            threshold=threshold, saturation=params['saturation'],
            read_noise=params['read_noise'],
            uncertainty_model=uncertainty_model,
            include_sky_mean=include_sky_mean, method=method,
            subpixels=subpixels, allow_off_frame=True)
        rows.append((ap, index, res))
    return _to_table(rows, frame, sky, params, threshold=threshold,
                     method=method, subpixels=subpixels,
                     uncertainty_model=uncertainty_model,
                     include_sky_mean=include_sky_mean, zeropoint=zeropoint)


def _to_table(rows, frame, sky, params, *, threshold, method, subpixels,
              uncertainty_model, include_sky_mean, zeropoint):
    n = len(rows)
    cols = {name: np.full(n, np.nan) for name in PHOTOMETRY_COLUMNS}
    cols['id'] = np.arange(1, n + 1)
    cols['flags'] = np.zeros(n, dtype=np.int32)
    for i, (ap, index, res) in enumerate(rows):
        x, y = _position(ap, index)
        cols['x_center'][i] = x
        cols['y_center'][i] = y
        cols['n_pix'][i] = res['n_pix']
        cols['sky'][i] = res['sky']
        cols['sky_std'][i] = res['sky_std']
        cols['sky_error_on_mean'][i] = res['sky_error_on_mean']
        cols['aperture_sum'][i] = res['flux']
        cols['flags'][i] = res['flags']
        budget = res['budget']
        if budget is None:
            continue
        terms = budget.terms
        cols['aperture_sum_err'][i] = budget.error
        cols['var_sky'][i] = terms.get('sky', terms.get('map', math.nan))
        cols['var_source'][i] = terms.get('source', math.nan)
        cols['var_sky_mean'][i] = terms.get('sky_mean', math.nan)
        cols['snr'][i] = budget.snr
        cols['mag_err'][i] = budget.mag_err
    cols['mag'] = instrumental_mag(cols['aperture_sum'],
                                   exptime=params['exptime'],
                                   zeropoint=zeropoint)
    table = QTable()
    unit = frame.unit
    for name in PHOTOMETRY_COLUMNS:
        value = cols[name]
        if unit is not None:
            if name in ('sky', 'sky_std', 'sky_error_on_mean',
                        'aperture_sum', 'aperture_sum_err'):
                value = value * unit
            elif name.startswith('var_'):
                value = value * unit ** 2
        table[name] = value
    table.meta.update(_provenance(params, sky, threshold=threshold,
                                  method=method, subpixels=subpixels,
                                  uncertainty_model=uncertainty_model,
                                  include_sky_mean=include_sky_mean,
                                  zeropoint=zeropoint,
                                  has_map=frame.uncertainty is not None))
    return table


def _provenance(params, sky, **kwargs):
    from . import __version__
    meta = {
        'versions': {'ccdphot_ext': __version__,
                     'photutils': photutils.__version__,
                     'astropy': astropy.__version__,
                     'numpy': np.__version__},
        'gain': params['gain'], 'gain_source': params.sources['gain'],
        'read_noise': params['read_noise'],
        'exptime': params['exptime'],
        'exptime_source': params.sources['exptime'],
        'saturation': params['saturation'],
        'sky_method': sky.method,
        'threshold': None if kwargs['threshold'] is None
        else repr(kwargs['threshold']),
        'method': kwargs['method'], 'subpixels': kwargs['subpixels'],
        'uncertainty_model': kwargs['uncertainty_model']
        if kwargs['has_map'] else None,
        'include_sky_mean': kwargs['include_sky_mean'],
        'zeropoint': kwargs['zeropoint'],
    }
    notes = []
    if params['gain'] is None:
        notes.append('no gain: source Poisson term absent (var_source NaN)')
    if params['exptime'] is None:
        notes.append('no exposure time: mag = -2.5 log10(aperture_sum)')
    meta['notes'] = notes
    return meta
