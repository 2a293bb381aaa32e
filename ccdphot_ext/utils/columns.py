# Licensed under a 3-clause BSD style license - see LICENSE
"""
The columns of a photometry table and the power of the data unit each
carries: one list for `~ccdphot_ext.photometer`, the batch tables and the
unit conversions.
"""

__all__ = []  # internal module: PHOTOMETRY_COLUMNS is public via photometer

#: Columns every `~ccdphot_ext.photometer` table has, in order.
PHOTOMETRY_COLUMNS = ('id', 'x_center', 'y_center', 'n_pix', 'sky',
                      'sky_std', 'sky_error_on_mean', 'aperture_sum',
                      'aperture_sum_err', 'var_sky', 'var_source',
                      'var_sky_mean', 'snr', 'mag', 'mag_err', 'flags')

#: Columns in the data unit (they scale with the gain).
FLUX_COLUMNS = ('sky', 'sky_std', 'sky_error_on_mean', 'aperture_sum',
                'aperture_sum_err')

#: Columns in the data unit squared (the variance terms).
VARIANCE_COLUMNS = ('var_sky', 'var_source', 'var_sky_mean')


def unit_power(name):
    """
    The power of the data unit a photometry column carries: 1 for a flux,
    2 for a variance (any ``var_*`` column), 0 otherwise.

    Examples
    --------
    >>> from ccdphot_ext.utils.columns import unit_power
    >>> unit_power('aperture_sum'), unit_power('var_sky'), unit_power('snr')
    (1, 2, 0)
    """
    if name in FLUX_COLUMNS:
        return 1
    if name in VARIANCE_COLUMNS or name.startswith('var_'):
        return 2
    return 0
