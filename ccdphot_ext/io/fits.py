# Licensed under a 3-clause BSD style license - see LICENSE
"""
Read FITS frames into `~astropy.nddata.CCDData`, with their uncertainty,
mask, unit, header and WCS, and with clear errors for files that are not
usable frames.

Everything a bad file can do (missing, a directory, empty, text, truncated,
corrupt header, data that no longer match their ``DATASUM``, a cube, a
table, no such HDU) raises `FrameReadError`, a
subclass of both `OSError` and `ValueError` with a one-line message naming
the file and the problem (the astropy exception, if any, is chained as its
cause).
"""

import os
import warnings

import astropy.units as u
import numpy as np
from astropy.nddata import (
    CCDData,
    InverseVariance,
    NDUncertainty,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from ..utils.inputs import negative_pixels
from ..utils.numbers import check_choice
from .dq import dq_bits as checked_dq_bits
from .dq import dq_bits_spec, dq_convention, dq_mask
from .fitsfile import (
    STORAGE_KEYWORDS,
    FrameReadError,
    check_path,
    ignore_card_warnings,
    is_2d_image,
    open_fits,
    read_image,
    select_hdu,
    verify_checksums,
)
from .header import INHERITED_TAG, read_data_unit, unit_from_header
from .units import check_data_unit
from .variance import VarianceArrays

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
#: Mask extensions searched by default (non-zero = bad). A DQ extension is
#: read through its bits (`~ccdphot_ext.io.dq`); a WHT extension masks only
#: the pixels of zero weight (a weight map may be an exposure map: it is
#: not taken as an inverse variance unless named with ``uncertainty=``).
_MASK_EXTENSIONS = ('MASK', 'BPM')
#: The variance arrays of a JWST product, read together when present.
_VARIANCE_EXTENSIONS = ('VAR_POISSON', 'VAR_RNOISE', 'VAR_FLAT')
_UTYPES = {'StdDevUncertainty': 'std', 'VarianceUncertainty': 'var',
           'InverseVariance': 'ivar'}
def _wcs(header):
    """The celestial WCS of a header, or None (a linear WCS is not kept)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except (ValueError, KeyError, TypeError, MemoryError) as exc:
            # wcslib's first line is where it failed, the last one why
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            warnings.warn(f'ignoring the header WCS: {lines[-1]}',
                          AstropyUserWarning, stacklevel=3)
            return None
    return wcs if wcs.has_celestial else None


def _companion(hdul, name, index):
    """
    The index of extension ``name`` that goes with the science HDU
    ``index``: the one of the same EXTVER (in HST's files of several chips,
    SCI,2 goes with ERR,2 and DQ,2; an HDU without EXTVER is version 1).
    None if there is none, or if it is the science HDU itself.
    """
    try:
        found = hdul.index_of((name, hdul[index].ver))
    except (KeyError, IndexError):
        return None
    return None if found == index else found


#: Extensions that hold what goes with a science image (its errors,
#: variances, data quality, weights, pixel areas), never one to measure.
_COMPANION_EXTENSIONS = frozenset(
    [name for name, _ in _UNCERTAINTY_EXTENSIONS] + list(_MASK_EXTENSIONS)
    + list(_VARIANCE_EXTENSIONS)
    + ['DQ', 'WHT', 'CON', 'AREA', 'SAMP', 'TIME', 'CTX'])


def _refuse_companion(hdul, index, hdu, path):
    """
    A `FrameReadError` when ``hdu=`` chose an extension that goes with a
    science image (ERR, DQ, VAR_POISSON, WHT, ...) in a file that has one:
    measuring it would give a table of numbers that are no fluxes, its
    science image's other arrays taken as its errors.
    """
    name = hdul[index].name.upper()
    if hdu is None or name not in _COMPANION_EXTENSIONS:
        return
    science = [_hdu_label(h, i) for i, h in enumerate(hdul)
               if h.name.upper() not in _COMPANION_EXTENSIONS
               and is_2d_image(h)]
    if science:
        raise FrameReadError(
            f'{path}: hdu={hdu!r} is the {name} array that goes with a '
            f'science image, not an image to measure; measure '
            f'{" or ".join(science[:3])} (its {name} is read with it)')


def _find_extension(hdul, names, exclude):
    for name in names:
        key = name[0] if isinstance(name, tuple) else name
        if _companion(hdul, key, exclude) is not None:
            return name
    return None


def _load_extra(source, hdul, path, shape, what, exclude):
    """
    Read an uncertainty or mask image: ``source`` is an HDU name or index
    in ``path`` or a path to another FITS file. Returns (array, header).
    """
    if isinstance(source, (str, int)) and not isinstance(source, bool):
        # a name: the extension of the science HDU's EXTVER first
        index = (_companion(hdul, source, exclude)
                 if isinstance(source, str) else None)
        try:
            if index is None:
                index = hdul.index_of(source)
            if not 0 <= index < len(hdul):
                raise IndexError(source)
        except (KeyError, IndexError):
            index = None
        if index is not None:
            if index == exclude:
                raise FrameReadError(f'{path}: {what}={source!r} is the '
                                     'science HDU itself')
            arr = read_image(hdul, index, path, f'{what} HDU {source!r}')
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
    other = check_path(other, what)
    with open_fits(other) as hdul2:
        index = select_hdu(hdul2, None, other)
        arr = read_image(hdul2, index, other, what)
        return arr, hdul2[index].header


def _check_shape(arr, shape, what, path):
    if arr.shape != shape:
        raise FrameReadError(f'{path}: {what} shape {arr.shape} does not '
                             f'match the data shape {shape}')


#: what each kind of uncertainty map holds, for messages
_KIND_WORDS = {'std': 'standard deviation', 'var': 'variance',
               'ivar': 'inverse variance', 'wht': 'weight'}
_ARTICLE = {'i': 'an', 's': 'a', 'v': 'a', 'w': 'a'}


def _refuse_negative(arr, kind, what, path):
    """Refuse an uncertainty map with negative values, naming the file and
    the extension (``what``): no variance, sigma or weight is negative."""
    found = negative_pixels(arr)
    if found:
        words = _KIND_WORDS[kind]
        raise FrameReadError(
            f'{path}: {what} holds {found[0]} negative {words} value(s), '
            f'the first at (x, y) = {found[1]}; {_ARTICLE[words[0]]} {words}'
            ' cannot be negative (set unusable pixels to NaN, or mask them)')


def _uncertainty_object(arr, kind, unit, what, path):
    """The map as the `~astropy.nddata.NDUncertainty` of ``kind``, in
    ``unit`` (None: the data's), refused when negative."""
    cls = UNCERTAINTY_TYPES[kind]
    arr = np.asarray(arr, dtype=np.float64)
    _refuse_negative(arr, kind, what, path)
    return cls(arr, unit=unit)


def read_frame(path, *, hdu=None, uncertainty=None, uncertainty_type=None,
               mask=None, unit=None, dq_bits=None):
    """
    Read a FITS frame into a `~astropy.nddata.CCDData`.

    Parameters
    ----------
    path : str or path-like
        The FITS file (``.fits``, ``.fz``, ``.gz`` ...).
    hdu : int, str or (str, int), optional
        The science HDU; default the first HDU holding a 2-D image (a
        ``(1, ny, nx)`` image counts as 2-D), with a warning when more
        images of its name follow (the other chips of an HST exposure:
        ``('SCI', 2)`` measures the second). The ERR, DQ and other
        extensions read with it are those of its EXTVER. The header
        records the HDU read as SCIHDU (``'SCI,1'``, or the index of an
        unnamed HDU). An extension that goes with a science image of the
        file (ERR, DQ, VAR_POISSON, WHT, ...) is refused: it is read with
        its science image, never measured as one.
    uncertainty : str, int, path, array, `~astropy.nddata.NDUncertainty`
        The uncertainty map: an HDU name or index in the same file, another
        FITS file, or the map itself. Default: a data product's variance
        arrays (:ref:`variance-arrays`): VAR_POISSON, VAR_RNOISE and
        VAR_FLAT (JWST), else the ERR of an image whose science HDU is
        named SCI (HST, JWST: the total error), as a
        `~ccdphot_ext.io.variance.VarianceArrays`; else the first of the
        extensions UNCERT (as `~astropy.nddata.CCDData` writes it), ERR,
        ERROR, SIGMA, VAR, VARIANCE, IVAR, INVVAR found in the file, if
        any.
    uncertainty_type : {'std', 'var', 'ivar'}, optional
        What the map holds. Default: the extension's UTYPE card if present,
        else its BUNIT (the data unit squared: a variance; its inverse
        square: an inverse variance), else by name (VAR/VARIANCE variance,
        IVAR/INVVAR inverse variance), else a standard deviation. A map
        whose BUNIT does not fit what it holds (a standard deviation in
        electrons beside data in adu) is refused.
    mask : str, int, path or array_like, optional
        Bad-pixel mask (non-zero = bad), as for ``uncertainty``. Default:
        the MASK or BPM extension, if any. Whatever the mask, a DQ
        extension masks the pixels with any of ``dq_bits`` set, and the
        pixels of zero weight in a WHT extension (no data) are masked.
    unit : `~astropy.units.Unit` or str, optional
        The data unit, instead of the header's BUNIT. A text is read as
        BUNIT is, and as ``ccdphot --unit`` reads it, whatever its case
        (``'ELECTRONS/S'``, ``'e-/s'``, ``'counts s-1'``; ``'MJY/SR'``
        with a warning naming the reading:
        `~ccdphot_ext.io.header.read_data_unit`). Default the header's
        BUNIT, read as astronomers write it
        (`~ccdphot_ext.io.header.unit_from_header`); without one
        (missing or blank) the data are taken to be in ``adu`` (with an
        `AstropyUserWarning`). A BUNIT that cannot be read as a unit, and
        a unit whose values cannot be added up into light (a magnitude, a
        percentage, a temperature ...:
        `~ccdphot_ext.io.units.check_data_unit`), are refused.
    dq_bits : int or str, optional
        The DQ bits that make a pixel bad (`~ccdphot_ext.io.dq.dq_bits`),
        flag names read by the file's mission (``'SATURATED'`` is 2 on
        JWST, 256 on HST); ``0`` masks nothing, ``'all'`` any bit. None
        (default): the default of the file's mission
        (`~ccdphot_ext.io.dq.dq_convention`: DO_NOT_USE on JWST, HST's
        bits of unusable pixels on ACS and WFC3, every bit on a file of
        unknown mission). The header of a frame with a DQ extension gets
        the bits masked as DQMASK and how they were chosen as DQRULE.

    Returns
    -------
    ccd : `~astropy.nddata.CCDData`
        Data in native byte order; the header as ``meta`` (an extension's
        completed by the primary header's keywords, each inherited card's
        comment starting ``[primary HDU]``: :ref:`header-keywords`); the
        uncertainty (its class says std/var/ivar, or
        `~ccdphot_ext.io.variance.VarianceArrays` for a data product's
        arrays), the mask, the DQ array as ``flags`` (None without one),
        and the celestial WCS if the header holds one (else None).

    Raises
    ------
    FrameReadError
        Missing, empty, non-FITS, truncated or corrupt files, data that
        do not match the ``DATASUM`` of their header (a header edited
        after writing, ``CHECKSUM`` no longer matching, only warns), no
        2-D image, a missing HDU, an uncertainty/mask whose shape
        differs, an uncertainty whose unit does not fit the data's, a
        BUNIT (of the data or of its uncertainty map) that cannot be read
        as a unit, or one whose values cannot be added up into light
        (``mag``, ``%``, ``K`` ...).
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

    A data product (SCI, ERR, DQ): ERR is the total error, DO_NOT_USE
    pixels are masked:

    >>> from astropy.io import fits
    >>> dq = np.zeros((4, 5), np.uint32)
    >>> dq[1, 2] = 1
    >>> fits.HDUList([fits.PrimaryHDU(),
    ...               fits.ImageHDU(np.ones((4, 5)), name='SCI'),
    ...               fits.ImageHDU(np.full((4, 5), 0.5), name='ERR'),
    ...               fits.ImageHDU(dq, name='DQ')]).writeto(path,
    ...                                                      overwrite=True)
    >>> ccd = read_frame(path, unit='electron')
    >>> ccd.uncertainty, int(ccd.mask.sum()), int(ccd.flags[1, 2])
    (VarianceArrays(ERR; shape (4, 5)), 1, 1)

    A distorted (not resampled) image's pixel-area map, an AREA extension
    (JWST ``cal`` images), is not applied: a warning says by how much the
    pixel areas differ, and the header keeps it as AREAVAR
    (:ref:`pixel-area-map`).
    """
    path = check_path(path)
    if uncertainty_type is not None:
        check_choice(uncertainty_type, 'uncertainty_type', UNCERTAINTY_TYPES)
    if unit is not None:
        unit = read_data_unit(unit, 'unit')
    spec = dq_bits_spec(dq_bits)
    with open_fits(path) as hdul, warnings.catch_warnings():
        ignore_card_warnings()  # reported once by open_fits
        index = select_hdu(hdul, hdu, path)
        _refuse_companion(hdul, index, hdu, path)
        header = _inherit_primary(hdul, index)
        _record_hdu(hdul, index, hdu, path, header)
        if index != 0 and hdul[index].header.get('INHERIT', True) is not False:
            # the primary header's keywords are inherited: check them too
            verify_checksums(hdul, 0, path, 'primary HDU')
        data = read_image(hdul, index, path, f'HDU {index}')
        unit = _data_unit(unit, header, path)
        unc_obj = _read_uncertainty(uncertainty, uncertainty_type, hdul,
                                    index, path, data.shape, unit)
        dq = _read_product_image(hdul, 'DQ', index, path, data.shape)
        bits = _chosen_dq_bits(spec, header, path, dq)
        # the DQ extension, named or not, is read through its bits
        named_dq = isinstance(mask, str) and mask.upper() == 'DQ'
        mask_arr = (None if named_dq and dq is not None else
                    _read_mask(mask, hdul, index, path, data.shape))
        mask_arr = _product_mask(mask_arr, dq, bits, hdul, index, path,
                                 data.shape)
        _check_pixel_areas(hdul, index, path, data.shape, header)
    return _build_frame(data, header, unit, unc_obj, mask_arr, path, dq)


def _hdu_label(hdu, index):
    """``SCI,2`` for a named extension, else the HDU's index."""
    if hdu.name and hdu.name != 'PRIMARY':
        return f'{hdu.name},{hdu.ver}'
    return str(index)


def _record_hdu(hdul, index, hdu, path, header):
    """
    Record the HDU read in the header (SCIHDU). Without ``hdu=``, warn when
    the file holds more 2-D images of the same name as the one taken (the
    chips of an HST exposure, SCI,1 and SCI,2; the unnamed extensions of a
    mosaic camera): only the first is measured.
    """
    chosen = hdul[index]
    label = _hdu_label(chosen, index)
    header['SCIHDU'] = (label, f'HDU read by ccdphot (index {index})')
    if hdu is not None:
        return
    same = [_hdu_label(h, i) for i, h in enumerate(hdul)
            if i != index and h.name == chosen.name and is_2d_image(h)]
    if same:
        listed = ', '.join(same[:4]) + (', ...' if len(same) > 4 else '')
        warnings.warn(
            f'{path}: {len(same)} more 2-D image HDU(s) named like the one '
            f'measured ({listed}); only HDU {label} is measured: choose '
            'another with hdu= (--hdu on the command line)',
            AstropyUserWarning, stacklevel=3)


def _chosen_dq_bits(spec, header, path, dq):
    """The DQ bits that mask a pixel: ``spec`` (`dq_bits_spec`) read by
    the convention of the file's mission, or that convention's default;
    with a DQ extension, recorded in the header (DQMASK, DQRULE)."""
    convention = dq_convention(header)
    if spec is None:
        bits, rule = convention.bad_bits, convention.rule
    else:
        try:
            bits = checked_dq_bits(spec, convention=convention)
        except ValueError as exc:
            raise FrameReadError(f'{path}: {exc}') from None
        rule = f'dq_bits={spec} ({convention.name})'
    if dq is not None:
        header['DQMASK'] = (bits, 'DQ bits masked by ccdphot read_frame')
        header['DQRULE'] = rule[:68]  # one card: no room for a comment
    return bits


#: keywords and extensions of a resampled (drizzled) product, whose pixels
#: are of equal area on the sky
_RESAMPLED_EXTENSIONS = ('WHT', 'CON')
#: pixel areas spread by more than this fraction are reported
AREA_SPREAD = 1e-3


def _check_pixel_areas(hdul, index, path, shape, header):
    """
    Warn that the pixel-area map of a distorted image (an AREA extension,
    as JWST's level-2 ``cal`` images carry) is not applied, when its areas
    differ by more than `AREA_SPREAD`; record the spread in the header as
    AREAVAR. A resampled product (S_RESAMP = COMPLETE, or a WHT or CON
    extension: pixels of equal area) is left alone.
    """
    if _companion(hdul, 'AREA', index) is None:
        return
    if str(header.get('S_RESAMP', '')).strip().upper() == 'COMPLETE' or any(
            name in hdul for name in _RESAMPLED_EXTENSIONS):
        return
    area = _read_product_image(hdul, 'AREA', index, path, shape)
    good = np.asarray(area, dtype=np.float64)
    good = good[np.isfinite(good) & (good > 0)]
    if good.size == 0:
        return
    low, high = float(good.min()), float(good.max())
    spread = high / low - 1.0
    if spread <= AREA_SPREAD:
        return
    header['AREAVAR'] = (float(f'{spread:.6g}'),
                         'AREA max/min - 1: pixel areas not applied')
    warnings.warn(
        f'{path}: the AREA extension (a pixel-area map: {low:.4g} to '
        f'{high:.4g}, {100 * spread:.3g}% apart) is not applied: sums take '
        'every pixel to be of the same area (PIXAR_SR, or the WCS), so a '
        "point source's flux on this distorted, not resampled image may be "
        f'off by up to {100 * spread:.3g}% where the areas differ most. '
        'Measure the resampled (i2d) image, or multiply the data and '
        'uncertainty by AREA first where your product\'s documentation '
        'says its point-source fluxes need it', AstropyUserWarning,
        stacklevel=3)


def _read_product_image(hdul, name, index, path, shape):
    """Extension ``name`` of a data product that goes with the science
    HDU ``index`` (`_companion`; None without it)."""
    found = _companion(hdul, name, index)
    if found is None:
        return None
    arr = read_image(hdul, found, path, f'{name} HDU')
    _check_shape(arr, shape, name, path)
    return arr


def _product_mask(mask_arr, dq, bits, hdul, index, path, shape):
    """The bad-pixel mask with a data product's DQ bits and zero-weight
    (uncovered) pixels added."""
    extra = []
    if dq is not None:
        if dq.dtype.kind not in 'iu':
            raise FrameReadError(f'{path}: the DQ HDU holds {dq.dtype} '
                                 'values, not integer bit flags')
        extra.append(dq_mask(dq, bits))
    wht = _read_product_image(hdul, 'WHT', index, path, shape)
    if wht is not None:
        _refuse_negative(wht, 'wht', 'the WHT HDU', path)
        extra.append(~(wht > 0))  # zero or NaN weight: no data
    for m in extra:
        mask_arr = m if mask_arr is None else (mask_arr | m)
    return mask_arr



def _read_uncertainty(uncertainty, uncertainty_type, hdul, index, path,
                      shape, data_unit):
    """The uncertainty map as an `~astropy.nddata.NDUncertainty` (None
    without one): given as an object or an array, or read from an HDU of
    the file, another file or the first extension of a known name."""
    if isinstance(uncertainty, NDUncertainty):
        _check_shape(np.asarray(uncertainty.array), shape, 'uncertainty',
                     path)
        return uncertainty
    if uncertainty is not None and not isinstance(
            uncertainty, (str, int, os.PathLike)):
        arr = np.asarray(uncertainty, dtype=np.float64)
        _check_shape(arr, shape, 'uncertainty', path)
        return _uncertainty_object(arr, uncertainty_type or 'std', None,
                                   'the uncertainty array', path)
    if uncertainty is None:
        product = _product_variance(hdul, index, path, shape)
        if product is not None:
            return product
    source, default_kind = uncertainty, None
    if source is None:
        found = _find_extension(hdul, _UNCERTAINTY_EXTENSIONS, index)
        if found is not None:
            source, default_kind = found
    if source is None:
        return None
    arr, ext_header = _load_extra(source, hdul, path, shape, 'uncertainty',
                                  index)
    _check_shape(arr, shape, 'uncertainty', path)
    what = (f'the {source} HDU' if isinstance(source, str) and source in hdul
            else f'uncertainty {source!r}')
    map_unit = _header_unit(ext_header, f'{path}: {what}', 'correct that '
                            'BUNIT card, or pass the map as an array in the '
                            'data unit')
    kind = (uncertainty_type
            or _UTYPES.get(str(ext_header.get('UTYPE', '')))
            or _kind_from_unit(map_unit, data_unit)
            or default_kind or _kind_from_name(source))
    return _uncertainty_object(arr, kind, map_unit, what, path)


def _product_variance(hdul, index, path, shape):
    """A data product's variance arrays (`VarianceArrays`), or None: the
    VAR_POISSON/VAR_RNOISE/VAR_FLAT present, else the ERR of a science
    HDU named SCI (the total error of STScI's HST and JWST products)."""
    arrays = {}
    for name in _VARIANCE_EXTENSIONS:
        arr = _read_product_image(hdul, name, index, path, shape)
        if arr is not None:
            arrays[name] = np.asarray(arr, dtype=np.float64)
            _refuse_negative(arrays[name], 'var', f'the {name} HDU', path)
    if not arrays and hdul[index].name == 'SCI':
        err = _read_product_image(hdul, 'ERR', index, path, shape)
        if err is not None:
            err = np.asarray(err, dtype=np.float64)
            _refuse_negative(err, 'std', 'the ERR HDU', path)
            arrays['ERR'] = err * err
    return VarianceArrays(arrays=arrays) if arrays else None


def _read_mask(mask, hdul, index, path, shape):
    """The bad-pixel mask as a boolean array (None without one): given as
    an array, or read from an HDU, another file or a MASK/BPM extension."""
    mask_arr = None
    if mask is not None and not isinstance(mask, (str, int, os.PathLike)):
        mask_arr = np.asarray(mask)
    else:
        source = mask
        if source is None:
            source = _find_extension(hdul, _MASK_EXTENSIONS, index)
        if source is not None:
            mask_arr, _ = _load_extra(source, hdul, path, shape, 'mask',
                                      index)
    if mask_arr is None:
        return None
    _check_shape(mask_arr, shape, 'mask', path)
    return mask_arr.astype(bool)


def _check_bunit(unit, header, path):
    """Refuse a BUNIT whose values cannot be added up into light."""
    try:
        check_data_unit(unit, f"{path}: BUNIT={header['BUNIT'].strip()!r}")
    except ValueError as exc:
        raise FrameReadError(f'{exc}; if BUNIT is wrong, pass unit= (--unit '
                             'to ccdphot) with the unit the values are in'
                             ) from None


def _header_unit(header, where, hint):
    """The unit of BUNIT (`unit_from_header`), or None when there is none;
    a `FrameReadError` naming ``where`` and saying ``hint`` when BUNIT
    cannot be read: its values are in a unit that cannot be told, and
    read as ADU they would give the source term and every column a wrong
    unit."""
    try:
        return unit_from_header(header)
    except ValueError as exc:
        raise FrameReadError(f'{where}: {exc}; {hint}') from None


def _data_unit(unit, header, path):
    """The data unit: ``unit`` (checked by `read_frame`), the header's
    BUNIT or (with a warning) ``adu``."""
    if unit is not None:
        return unit
    unit = _header_unit(header, path, 'pass unit= (--unit to ccdphot) with '
                        'the unit the values are in')
    if unit is not None:
        _check_bunit(unit, header, path)
        return unit
    warnings.warn(f'{path}: no usable BUNIT in the header (missing or '
                  'blank): data taken to be in adu '
                  '(pass unit=, or --unit to ccdphot measure, find '
                  'or batch, to say otherwise)',
                  AstropyUserWarning, stacklevel=3)
    return u.adu


def _build_frame(data, header, unit, unc_obj, mask_arr, path, dq=None):
    """The `~astropy.nddata.CCDData` in ``unit`` (`_data_unit`); the DQ
    array as its ``flags``."""
    _check_uncertainty_unit(unc_obj, unit, path)
    with warnings.catch_warnings():
        ignore_card_warnings()
        try:
            return CCDData(data, unit=unit, uncertainty=unc_obj,
                           mask=mask_arr, meta=header, wcs=_wcs(header),
                           flags=dq)
        except (ValueError, TypeError, u.UnitsError) as exc:
            raise FrameReadError(f'{path}: cannot build the frame: '
                                 f'{str(exc).splitlines()[0]}') from exc


#: The power of the data unit each kind of uncertainty map is in.
_KIND_POWERS = {'std': 1, 'var': 2, 'ivar': -2}


def _check_uncertainty_unit(unc_obj, unit, path):
    """Refuse an uncertainty map whose unit does not fit its kind and the
    data unit (a standard deviation in the data unit, a variance in its
    square, an inverse variance in its inverse square), saying which
    would."""
    kind = _UTYPES.get(type(unc_obj).__name__)
    if kind is None or unc_obj.unit is None:
        return
    if unc_obj.unit.is_equivalent(unit ** _KIND_POWERS[kind]):
        return
    std, var, ivar = (unit ** p for p in _KIND_POWERS.values())
    how = (' (electrons to adu: divide by the gain)'
           if unc_obj.unit.is_equivalent(u.electron ** _KIND_POWERS[kind])
           and unit.is_equivalent(u.adu) else '')
    words = _KIND_WORDS[kind]
    raise FrameReadError(
        f'{path}: the uncertainty map is in {unc_obj.unit}, which does not '
        f'fit {_ARTICLE[words[0]]} {words} of data in {unit} (a '
        f'standard deviation is in {std}, a variance in {var}, an inverse '
        f'variance in {ivar}): convert the map to the data unit{how}, or '
        'say what it holds (its UTYPE card, uncertainty_type=)')


def _inherit_primary(hdul, index):
    """
    The science HDU's header, completed by the primary header's keywords.

    As `~astropy.nddata.CCDData.read` does for a multi-extension file: a
    keyword of the extension wins, the primary's structural keywords are
    not copied, and an extension with ``INHERIT = F`` inherits nothing.
    Each inherited card's comment starts with `INHERITED_TAG`, so
    `~ccdphot_ext.DetectorParameters.resolve` can say where a value came
    from.
    """
    header = hdul[index].header.copy()
    for key in STORAGE_KEYWORDS:  # the data are read scaled (read_image)
        header.remove(key, ignore_missing=True, remove_all=True)
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


def _kind_from_unit(map_unit, data_unit):
    """``'var'`` for a map in the square of the data unit (a BUNIT of
    ``adu2`` beside ``adu``), ``'ivar'`` in its inverse square, else None
    (a map in the data unit may be a variance extension whose header was
    copied from the data's: its name or UTYPE decides)."""
    if map_unit is None or data_unit is None:
        return None
    for kind in ('var', 'ivar'):
        if map_unit == data_unit ** _KIND_POWERS[kind]:
            return kind
    return None


def _kind_from_name(source):
    name = str(source).upper()
    for ext, kind in _UNCERTAINTY_EXTENSIONS:
        if name == ext:
            return kind
    return 'std'
